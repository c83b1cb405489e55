"""Service products (服务产品): their state machine, the rule-based pre-review, and what an
edit does to a product's review.

    draft --submit--> pending_review --approve--> listed --unlist--> unlisted
      ^                 |   ^                        |                 |
      |              reject |  (price / max subsidy changed,          relist: listed again when
      |                 v   |   or a new flag raised)                 its figures are the ones
    (edit)          rejected --submit--> pending_review              approved, else back to review
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from common.rules import Refusal


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    REJECTED = "rejected"
    LISTED = "listed"
    UNLISTED = "unlisted"


STATUS_LABELS: dict[str, str] = {
    Status.DRAFT: "草稿",
    Status.PENDING_REVIEW: "待审核",
    Status.REJECTED: "审核不通过",
    Status.LISTED: "已上架",
    Status.UNLISTED: "已下架",
}


class Action(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    UNLIST = "unlist"
    RELIST = "relist"


# (from, action) -> to. relist's target depends on the figures (see :func:`relist_target`).
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.DRAFT, Action.SUBMIT): Status.PENDING_REVIEW,
    (Status.REJECTED, Action.SUBMIT): Status.PENDING_REVIEW,
    (Status.PENDING_REVIEW, Action.APPROVE): Status.LISTED,
    (Status.PENDING_REVIEW, Action.REJECT): Status.REJECTED,
    (Status.LISTED, Action.UNLIST): Status.UNLISTED,
    (Status.UNLISTED, Action.RELIST): Status.LISTED,
}

EDITABLE = frozenset(Status)  # every status may be edited; what it does depends on the status
PROVIDER_ACTIONS = (Action.SUBMIT, Action.UNLIST, Action.RELIST)


def transition(status: str, action: str) -> Status:
    """The status ``action`` leads to from ``status``; else it refuses naming both
    (``product_status_conflict``)."""
    target = TRANSITIONS.get((Status(status), Action(action)))
    if target is None:
        raise Refusal("product_status_conflict", status=Status(status), action=Action(action))
    return target


def actions(status: str) -> list[str]:
    """What the provider may do with a product in ``status`` (the list's buttons)."""
    allowed = ["edit"]
    allowed += [a.value for a in PROVIDER_ACTIONS if (Status(status), a) in TRANSITIONS]
    return allowed


# --- the figures a review approves -------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    market_price_fen: int
    platform_price_fen: int
    max_subsidy_fen: int

    def as_dict(self) -> dict[str, int]:
        return {
            "market_price_fen": self.market_price_fen,
            "platform_price_fen": self.platform_price_fen,
            "max_subsidy_fen": self.max_subsidy_fen,
        }


def check_price(figures: Figures) -> None:
    """Refuses figures that cannot be a product's: a price not positive, the platform price
    above the market price, a negative max subsidy."""
    if figures.market_price_fen <= 0 or figures.platform_price_fen <= 0:
        raise Refusal("price_not_positive")
    if figures.platform_price_fen > figures.market_price_fen:
        raise Refusal("price_above_market")
    if figures.max_subsidy_fen < 0:
        raise Refusal("max_subsidy_negative")


def figures_changed(before: Figures, after: Figures) -> bool:
    """Does the change touch what a reviewer approved (platform price, max subsidy)?

    The market guide price alone is informative (市场指导价): lowering it to the platform
    price does not change what an enterprise pays or what the voucher covers.
    """
    return (before.platform_price_fen, before.max_subsidy_fen) != (
        after.platform_price_fen,
        after.max_subsidy_fen,
    )


def status_after_edit(status: str, *, figures_changed: bool, new_flags: bool) -> Status:
    """A listed product whose price or max subsidy changes, or that now raises a pre-review
    flag it did not raise before, leaves the listing and goes back to review; every other
    status stays what it is (a draft stays a draft until submitted)."""
    current = Status(status)
    if current is Status.LISTED and (figures_changed or new_flags):
        return Status.PENDING_REVIEW
    return current


def relist_target(approved: Figures | None, current: Figures) -> Status:
    """An unlisted product comes back listed when its figures are the ones last approved;
    changed since (edited while unlisted), it goes through review again."""
    if approved is None or figures_changed(approved, current):
        return Status.PENDING_REVIEW
    return Status.LISTED


# --- the rule-based pre-review ---------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def pre_review(
    *,
    name: str,
    description: str,
    deliverables: str,
    acceptance_criteria: str,
    banned_phrases: Iterable[str],
) -> list[Flag]:
    """What a reviewer should look at twice: a listing without deliverables or acceptance
    criteria, or with banned phrasing (case-insensitive, anywhere in its texts)."""
    flags: list[Flag] = []
    if not deliverables.strip():
        flags.append(Flag("missing_deliverables", "未填写服务交付物"))
    if not acceptance_criteria.strip():
        flags.append(Flag("missing_acceptance_criteria", "未填写验收标准"))
    text = "\n".join((name, description, deliverables, acceptance_criteria)).casefold()
    seen: set[str] = set()
    for phrase in banned_phrases:
        key = phrase.strip().casefold()
        if key and key not in seen and key in text:
            seen.add(key)
            flags.append(Flag("banned_phrase", f"含有禁用表述：{phrase.strip()}"))
    return flags


def raises_new_flags(before: Iterable[dict[str, str]], after: Iterable[Flag]) -> bool:
    old = {(f.get("code"), f.get("message")) for f in before}
    return any((f.code, f.message) not in old for f in after)
