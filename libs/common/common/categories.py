"""Service categories and which voucher pays for them (DESIGN.md business rules).

Products in 融资担保 and 直接设备租赁 take the matching special voucher; every other category
takes the general voucher. The portal's two listings follow: 通用券服务 (general) and
设备更新专项券服务 (the two special types).
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "企业诊断",
    "数字化转型",
    "技术创新",
    "融资服务",
    "高阶检验检测验证",
    "中高端市场开拓",
    "直接设备租赁",
    "融资担保",
    "其他服务",
)

GENERAL = "general"
FINANCING_GUARANTEE = "financing_guarantee"
EQUIPMENT_LEASING = "equipment_leasing"

VOUCHER_TYPES: dict[str, str] = {
    GENERAL: "通用券",
    FINANCING_GUARANTEE: "融资担保专项券",
    EQUIPMENT_LEASING: "直接设备租赁专项券",
}

_SPECIAL = {"融资担保": FINANCING_GUARANTEE, "直接设备租赁": EQUIPMENT_LEASING}


def voucher_type_for(category: str) -> str:
    """The voucher type that pays for a product of ``category``."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    return _SPECIAL.get(category, GENERAL)


def categories_for(voucher_type: str) -> tuple[str, ...]:
    return tuple(c for c in CATEGORIES if voucher_type_for(c) == voucher_type)
