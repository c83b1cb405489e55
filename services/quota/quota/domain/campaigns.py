"""Campaigns: the figures and texts are the 2024 campaign's (the manual's chapter 6, word for
word); every campaign holds its own copy, which administrators may change
(``PUT /admin/campaigns/{year}``). Each voucher type's window, in Shanghai dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from common.categories import EQUIPMENT_LEASING, FINANCING_GUARANTEE, GENERAL, VOUCHER_TYPES
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


# --- windows -----------------------------------------------------------------------------------


def business_day(at: datetime) -> date:
    """The Asia/Shanghai date of an instant."""
    return to_shanghai(at).date()


def in_window(day: date, valid_from: date, valid_to: date) -> bool:
    """Windows are inclusive at both ends, in Shanghai dates."""
    return valid_from <= day <= valid_to


def window_end(valid_to: date) -> datetime:
    """The instant the window closes: the start of the day after ``valid_to``, Shanghai time (UTC)."""
    return datetime.combine(valid_to + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)


def window_closed(valid_to: date, now: datetime) -> bool:
    """The window has ended at ``now``: the voucher takes no new submission and no new quota
    (an approval then would add a remainder that its expiry, already due, never takes)."""
    return now >= window_end(valid_to)
