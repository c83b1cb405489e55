"""quota's rules: pure functions, no I/O, no HTTP errors.

The figures and texts are the 2024 campaign's (the manual's chapter 6, word for word); every
campaign holds its own copy, which administrators may change (``PUT /admin/campaigns/{year}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from common.categories import EQUIPMENT_LEASING, FINANCING_GUARANTEE, GENERAL, VOUCHER_TYPES, voucher_type_for
from common.idnumbers import InvalidNumber, validate_uscc
from common.numbers import SHANGHAI, to_shanghai

BP = 10_000  # basis points: 5000 = 50%
WAN = 1_000_000  # 1万元 in fen

BASE_DESIGNATION = "一般规模以上制造业企业"

POLICY_TEXTS: dict[str, str] = {
    GENERAL: (
        "通用券补贴额度：一般规模以上制造业企业年度配额为每家5万元；自治区数字化车间企业、"
        "自治区两化融合管理体系贯标评定企业、在线诊断结果达到数字化转型成熟度3档以上企业、"
        "广西“专精特新”专板企业、创新型中小企业、上两个年度新增进入统计名录库的规模以上企业"
        "年度配额为每家10万元；自治区制造业单项冠军、自治区专精特新中小企业、自治区智能工厂及以上企业、"
        "自治区创新示范企业、自治区质量管理标杆企业年度配额为每家20万元；国家级制造业单项冠军、"
        "专精特新“小巨人”企业年度配额为每家30万元"
    ),
    FINANCING_GUARANTEE: (
        "通过融资担保方式开展设备更新和技术改造的，按不超过实际担保费的50%给予服务券额度，"
        "每家企业每年可使用服务券额度最高不超过100万元，支持期限不超过3年。"
    ),
    EQUIPMENT_LEASING: (
        "通过直接租赁方式开展设备更新和技术改造的，按不超过购置设备租赁合同签订当期贷款市场报价利率的20%"
        "予以服务券额度，每家企业每年最高可使用服务券额度不超过50万元，支持期限不超过3年。"
    ),
}

# The manual's tier table (企业类型 / 补贴金额(每年)).
DEFAULT_TIERS: tuple[dict[str, Any], ...] = (
    {"label": "5万", "amount_fen": 5 * WAN, "designations": [BASE_DESIGNATION]},
    {
        "label": "10万",
        "amount_fen": 10 * WAN,
        "designations": [
            "自治区数字化车间企业",
            "自治区两化融合管理体系贯标评定企业",
            "在线诊断结果达到数字化转型成熟度3档以上企业",
            "广西“专精特新”专板企业",
            "创新型中小企业",
            "上两个年度新增进入统计名录库的规模以上企业",
        ],
    },
    {
        "label": "20万",
        "amount_fen": 20 * WAN,
        "designations": [
            "自治区级制造业单项冠军",
            "自治区专精特新中小企业",
            "自治区智能工厂及以上企业",
            "自治区创新示范企业",
            "自治区质量管理标杆企业",
        ],
    },
    {
        "label": "30万",
        "amount_fen": 30 * WAN,
        "designations": ["国家级制造业单项冠军", "专精特新“小巨人”企业"],
    },
)

# Per type: ratio, yearly cap, share of the basis a request may reach, support years.
DEFAULT_TYPE_RULES: dict[str, dict[str, Any]] = {
    GENERAL: {"ratio_bp": 5000, "yearly_cap_fen": 30 * WAN, "basis_share_bp": None, "support_years": None},
    FINANCING_GUARANTEE: {
        "ratio_bp": 5000,
        "yearly_cap_fen": 100 * WAN,
        "basis_share_bp": 5000,
        "support_years": 3,
    },
    EQUIPMENT_LEASING: {
        "ratio_bp": 5000,
        "yearly_cap_fen": 50 * WAN,
        "basis_share_bp": 2000,
        "support_years": 3,
    },
}

WINDOWS_2024: dict[str, tuple[date, date]] = {
    GENERAL: (date(2024, 9, 13), date(2024, 12, 31)),
    FINANCING_GUARANTEE: (date(2024, 7, 19), date(2024, 12, 31)),
    EQUIPMENT_LEASING: (date(2024, 7, 19), date(2024, 12, 31)),
}

SPECIAL_TYPES = (FINANCING_GUARANTEE, EQUIPMENT_LEASING)


def campaign_spec(year: int, windows: dict[str, tuple[date, date]] | None = None) -> dict[str, Any]:
    """A campaign with the 2024 rules; ``windows`` default to the whole year."""
    windows = windows or {t: (date(year, 1, 1), date(year, 12, 31)) for t in VOUCHER_TYPES}
    return {
        "title": f"{year}年广西制造业企业培优育强服务券活动",
        "pending_budget_fen": 5000 * WAN,
        "tiers": [dict(t, designations=list(t["designations"])) for t in DEFAULT_TIERS],
        "types": [
            {
                "voucher_type": t,
                "policy_text": POLICY_TEXTS[t],
                "valid_from": windows[t][0],
                "valid_to": windows[t][1],
                **DEFAULT_TYPE_RULES[t],
            }
            for t in VOUCHER_TYPES
        ],
    }


# --- tiers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    label: str
    amount_fen: int
    designation: str  # the designation that gave it (shown next to the voucher number)


def known_designations(tiers: Iterable[dict[str, Any]]) -> set[str]:
    return {d for t in tiers for d in t.get("designations", [])}


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


def special_request_problem(
    requested_fen: int, basis_fen: int, basis_share_bp: int, cap_left_fen: int
) -> str | None:
    """Why a special-type request is refused (a stable code), or None when it may be made."""
    if requested_fen <= 0 or basis_fen <= 0:
        return "amount_not_positive"
    if requested_fen * BP > basis_fen * basis_share_bp:
        return "basis_insufficient"
    if requested_fen > cap_left_fen:
        return "over_yearly_cap"
    return None


def approval_problem(approved_fen: int, requested_fen: int, cap_left_fen: int) -> str | None:
    if approved_fen <= 0:
        return "amount_not_positive"
    if approved_fen > requested_fen:
        return "approved_over_request"
    if approved_fen > cap_left_fen:
        return "over_yearly_cap"
    return None


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
    voucher_id: str | None  # the voucher quoted at submission; None: the enterprise's usable one
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
        looked_up = order.voucher_id is not None or expected is not None
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


def business_day(at: datetime) -> date:
    """The Asia/Shanghai date of an instant."""
    return to_shanghai(at).date()


def in_window(day: date, valid_from: date, valid_to: date) -> bool:
    """Windows are inclusive at both ends, in Shanghai dates."""
    return valid_from <= day <= valid_to


def window_end(valid_to: date) -> datetime:
    """The instant the window closes: the start of the day after ``valid_to``, Shanghai time (UTC)."""
    return datetime.combine(valid_to + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)


def expiry_moment(valid_to: date, grace: timedelta) -> datetime:
    """When the unreserved remainder expires: the window's end plus the grace in which orders
    submitted inside the window, reaching quota late, still reserve."""
    return window_end(valid_to) + grace


def window_closed(valid_to: date, now: datetime) -> bool:
    """The window has ended at ``now``: the voucher takes no new submission and no new quota
    (an approval then would add a remainder that its expiry, already due, never takes)."""
    return now >= window_end(valid_to)


# --- what the enterprise sees per type ---------------------------------------------------------

STATE_LABELS = {
    "not_applied": "申请",
    "pending_review": "待审核",
    "rejected": "申请",
    "active": "去使用",
    "expired": "已过期",
}
APPLICATION_STATE_LABELS = {"pending_review": "待审核", "approved": "审核通过", "rejected": "审核不通过"}


def voucher_state(*, has_voucher: bool, expired: bool, application_state: str | None) -> str:
    if has_voucher:
        return "expired" if expired else "active"
    if application_state in ("pending_review", "rejected"):
        return application_state
    return "not_applied"


def is_expired(expired_at: datetime | None, valid_to: date, today: date) -> bool:
    return expired_at is not None or today > valid_to


# --- designation lists -------------------------------------------------------------------------

HEADER_WORDS = {"uscc", "统一社会信用代码", "designation", "企业类型", "认定类型"}


def is_header(cells: Sequence[Any]) -> bool:
    return any(str(c or "").strip().lower() in HEADER_WORDS for c in cells)


def check_row(
    cells: Sequence[Any], known: set[str], seen: set[tuple[str, str]]
) -> tuple[str, str, str | None]:
    """(uscc as given or normalised, designation, reason it is refused or None). ``seen``
    collects the accepted (uscc, designation) pairs so a repeat in the file is refused."""
    raw_uscc = str(cells[0] if len(cells) > 0 and cells[0] is not None else "").strip()
    designation = str(cells[1] if len(cells) > 1 and cells[1] is not None else "").strip()
    try:
        number = validate_uscc(raw_uscc)
    except InvalidNumber as exc:
        return raw_uscc, designation, exc.message
    if designation not in known:
        return number, designation, f"未知的企业类型“{designation}”" if designation else "企业类型不能为空"
    if (number, designation) in seen:
        return number, designation, "文件中重复的行"
    seen.add((number, designation))
    return number, designation, None
