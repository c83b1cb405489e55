"""Applications: the tier an enterprise's designations give, special-type requests and their
approval."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from common.rules import Refusal
from quota.domain.campaigns import BASE_DESIGNATION, BP

APPLICATION_STATE_LABELS = {"pending_review": "待审核", "approved": "审核通过", "rejected": "审核不通过"}


# --- tiers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    label: str
    amount_fen: int
    designation: str  # the designation that gave it (shown next to the voucher number)


def tier_for(designations: Iterable[str], tiers: Sequence[dict[str, Any]]) -> Tier | None:
    """The highest tier any of the enterprise's designations gives, or None (on no list)."""
    held = set(designations)
    best: Tier | None = None
    for t in tiers:
        for d in t.get("designations", []):
            if d in held and (best is None or t["amount_fen"] > best.amount_fen):
                best = Tier(t["label"], int(t["amount_fen"]), d)
    return best


def base_tier(tiers: Sequence[dict[str, Any]]) -> Tier:
    """The lowest tier (一般规模以上制造业企业): what a flagged application is approved at."""
    lowest = min(tiers, key=lambda t: t["amount_fen"])
    names = lowest.get("designations") or [BASE_DESIGNATION]
    return Tier(lowest["label"], int(lowest["amount_fen"]), names[0])


# --- special types -----------------------------------------------------------------------------


def check_special_request(requested_fen: int, basis_fen: int, basis_share_bp: int, cap_left_fen: int) -> None:
    """Refuses a special-type request beyond its share of the basis or the cap left this year;
    ``field`` names the amount at fault."""
    if requested_fen <= 0 or basis_fen <= 0:
        raise Refusal("amount_not_positive", field="requested_fen")
    if requested_fen * BP > basis_fen * basis_share_bp:
        raise Refusal("basis_insufficient", field="basis_fen")
    if requested_fen > cap_left_fen:
        raise Refusal("over_yearly_cap", field="requested_fen")


def check_approved_amount(approved_fen: int, requested_fen: int, cap_left_fen: int) -> None:
    """Refuses an approved amount that is not positive, above the request or above the cap
    left this year (``field``: approved_fen)."""
    if approved_fen <= 0:
        raise Refusal("amount_not_positive", field="approved_fen")
    if approved_fen > requested_fen:
        raise Refusal("approved_over_request", field="approved_fen")
    if approved_fen > cap_left_fen:
        raise Refusal("over_yearly_cap", field="approved_fen")
