"""Provider applications (申请入驻平台): pending_review (the word quota's applications use) until a reviewer approves or rejects; a
rejected organisation may apply again, an approved one is a provider for good."""

from __future__ import annotations

from enum import StrEnum

from common.categories import CATEGORIES


class AppState(StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


STATE_LABELS: dict[str, str] = {
    AppState.PENDING_REVIEW: "待审核",
    AppState.APPROVED: "审核通过",
    AppState.REJECTED: "审核不通过",
}


def may_decide(state: str) -> bool:
    return state == AppState.PENDING_REVIEW


def may_apply(latest_state: str | None, *, is_provider: bool) -> str | None:
    """Why a new application is refused (a problem code), or None."""
    if is_provider or latest_state == AppState.APPROVED:
        return "already_provider"
    if latest_state == AppState.PENDING_REVIEW:
        return "application_pending"
    return None


def unknown_categories(categories: list[str]) -> list[str]:
    return [c for c in categories if c not in CATEGORIES]
