"""Vouchers: the subsidy an order gets, quota's decision for a submitted order, what the
enterprise's quota screen shows, when the remainder expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from common.categories import GENERAL, voucher_type_for
from quota.domain.campaigns import BP, business_day, in_window, window_end

# --- subsidy -----------------------------------------------------------------------------------


def ratio_part(price_fen: int, ratio_bp: int) -> int:
    """ratio × price, rounded down to the fen (no change is given)."""
    return max(price_fen, 0) * ratio_bp // BP


def subsidy(
    price_fen: int, ratio_bp: int, max_subsidy_fen: int, remaining_fen: int, cap_room_fen: int | None = None
) -> int:
    """min(ratio × price, product max, voucher remaining, provider cap room)."""
    parts = [ratio_part(price_fen, ratio_bp), max(max_subsidy_fen, 0), max(remaining_fen, 0)]
    if cap_room_fen is not None:
        parts.append(max(cap_room_fen, 0))
    return min(parts)


def wanted(price_fen: int, ratio_bp: int, max_subsidy_fen: int) -> int:
    """What the product alone would allow: min(ratio × price, product max)."""
    return min(ratio_part(price_fen, ratio_bp), max(max_subsidy_fen, 0))


def voucher_type_of(category: str) -> str | None:
    try:
        return voucher_type_for(category)
    except ValueError:
        return None


# --- reserving for an order (the saga's step 2) ------------------------------------------------

REASONS = {
    "no_voucher": "企业没有可用于该类服务的服务券",
    "not_owner": "该服务券不属于下单企业",
    "wrong_type": "该服务券不能用于此类服务产品",
    "outside_window": "不在服务券配额有效期内",
    "nothing_left": "服务券剩余额度不足",
    "provider_cap_reached": "该服务机构本年度服务券补贴已达上限",
    "suspended": "企业已被平台暂停使用",
    "voucher_not_active": "服务券已失效",
}


@dataclass(frozen=True)
class OrderFacts:
    """What a submitted order asks of quota."""

    enterprise_id: str
    voucher_id: str | None  # the voucher quoted at submission; None or "": the enterprise's usable one
    category: str
    price_fen: int
    max_subsidy_fen: int


@dataclass(frozen=True)
class VoucherFacts:
    """The voucher as locked for the decision; its window is its campaign type's."""

    id: str
    enterprise_id: str
    voucher_type: str
    campaign_year: int
    ratio_bp: int
    remaining_fen: int
    valid_from: date
    valid_to: date
    expired: bool  # its remainder has expired (``expired_at`` is set)


@dataclass(frozen=True)
class Reserved:
    voucher_id: str
    amount_fen: int  # may be 0: the product allows no subsidy (nothing is moved then)
    ratio_bp: int
    cap_year: int | None  # the provider cap's year the amount is also held on (general vouchers)


@dataclass(frozen=True)
class Rejected:
    code: str
    voucher_id: str | None  # the voucher refused, when there is one

    @property
    def reason(self) -> str:
        return REASONS[self.code]


def cap_year(voucher: VoucherFacts) -> int | None:
    """The year of the provider's cap a reservation on ``voucher`` is held on: general vouchers
    only (the special types have no provider cap)."""
    return voucher.campaign_year if voucher.voucher_type == GENERAL else None


def refused_before_cap(
    order: OrderFacts, voucher: VoucherFacts | None, *, suspended: bool, now: datetime
) -> Rejected | None:
    """The rules of :func:`reserve` before the provider's cap, in their order (the first that
    fails is the answer): suspended, no voucher, owner, type, expired, window, nothing left.
    ``voucher`` is the one the order names, else the enterprise's usable one of the category's
    type (None: none found, or not looked up because the enterprise is suspended or the
    category has no type). The service locks the cap only when this passes."""
    if suspended:
        return Rejected("suspended", order.voucher_id)
    expected = voucher_type_of(order.category)
    if voucher is None:
        looked_up = bool(order.voucher_id) or expected is not None
        return Rejected("no_voucher" if looked_up else "wrong_type", None)
    if voucher.enterprise_id != order.enterprise_id:
        return Rejected("not_owner", voucher.id)
    if expected is None or voucher.voucher_type != expected:
        return Rejected("wrong_type", voucher.id)
    if voucher.expired:
        return Rejected("voucher_not_active", voucher.id)
    if not in_window(business_day(now), voucher.valid_from, voucher.valid_to):
        return Rejected("outside_window", voucher.id)
    if wanted(order.price_fen, voucher.ratio_bp, order.max_subsidy_fen) > 0 and voucher.remaining_fen <= 0:
        return Rejected("nothing_left", voucher.id)
    return None


def reserve(
    order: OrderFacts,
    voucher: VoucherFacts | None,
    *,
    suspended: bool,
    now: datetime,
    cap_room_fen: int | None = None,
) -> Reserved | Rejected:
    """quota's decision for an order that uses a voucher: :func:`refused_before_cap`, then the
    provider's cap (general vouchers: ``cap_room_fen`` is what is left of it, which the caller
    must give once those rules pass), then the amount: min(ratio × price rounded down to the
    fen, product max, remaining, cap room). A product that allows no subsidy reserves 0."""
    refused = refused_before_cap(order, voucher, suspended=suspended, now=now)
    if refused is not None:
        return refused
    assert voucher is not None
    year = cap_year(voucher)
    if year is not None:
        if cap_room_fen is None:
            raise ValueError("a general voucher's reservation needs what is left of the provider's cap")
        want = wanted(order.price_fen, voucher.ratio_bp, order.max_subsidy_fen)
        if want > 0 and cap_room_fen <= 0:
            return Rejected("provider_cap_reached", voucher.id)
    room = cap_room_fen if year is not None else None
    amount = subsidy(order.price_fen, voucher.ratio_bp, order.max_subsidy_fen, voucher.remaining_fen, room)
    return Reserved(voucher.id, amount, voucher.ratio_bp, year)


# --- time --------------------------------------------------------------------------------------


def expiry_moment(valid_to: date, grace: timedelta) -> datetime:
    """When the unreserved remainder expires: the window's end plus the grace in which orders
    submitted inside the window, reaching quota late, still reserve."""
    return window_end(valid_to) + grace


# --- what the enterprise sees per type ---------------------------------------------------------

STATE_LABELS = {
    "not_applied": "申请",
    "pending_review": "待审核",
    "rejected": "申请",
    "active": "去使用",
    "expired": "已过期",
}


def voucher_state(*, has_voucher: bool, expired: bool, application_state: str | None) -> str:
    if has_voucher:
        return "expired" if expired else "active"
    if application_state in ("pending_review", "rejected"):
        return application_state
    return "not_applied"


def is_expired(expired_at: datetime | None, valid_to: date, today: date) -> bool:
    return expired_at is not None or today > valid_to
