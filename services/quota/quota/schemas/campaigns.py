"""Campaigns: the year's tiers and voucher types, as administrators set them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from common import money
from common.text import FREE_TEXT_CHECK, NAME_CHECK
from quota.schemas import Orm, PositiveFen, VoucherType


class TierIn(BaseModel):
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), NAME_CHECK]
    amount_fen: PositiveFen
    designations: Annotated[
        list[
            Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), NAME_CHECK]
        ],
        Field(min_length=1),
    ]


class CampaignTypeIn(BaseModel):
    voucher_type: VoucherType
    policy_text: Annotated[str, StringConstraints(min_length=1, max_length=2000), FREE_TEXT_CHECK]
    valid_from: date
    valid_to: date
    ratio_bp: Annotated[int, Field(gt=0, le=10_000)] = 5000
    yearly_cap_fen: Annotated[money.Fen, Field(le=10**13)] = 0
    basis_share_bp: Annotated[int, Field(gt=0, le=10_000)] | None = None
    support_years: Annotated[int, Field(gt=0, le=20)] | None = None


class CampaignIn(BaseModel):
    title: Annotated[str, StringConstraints(max_length=200), NAME_CHECK] = ""
    pending_budget_fen: Annotated[money.Fen, Field(le=10**14)] = 0
    tiers: Annotated[list[TierIn], Field(min_length=1, max_length=20)]
    types: Annotated[list[CampaignTypeIn], Field(min_length=1, max_length=3)]


class TierOut(BaseModel):
    label: str
    amount_fen: int
    designations: list[str]


class CampaignTypeOut(Orm):
    voucher_type: str
    voucher_type_label: str = ""
    policy_text: str
    valid_from: date
    valid_to: date
    valid_label: str = ""  # 2024年09月13日~2024年12月31日 (配额有效期)
    ratio_bp: int
    yearly_cap_fen: int
    basis_share_bp: int | None
    support_years: int | None
    categories: list[str] = []  # noqa: RUF012 (a pydantic field: Orm is a BaseModel, which copies it)


class CampaignOut(BaseModel):
    year: int
    title: str
    pending_budget_fen: int
    tiers: list[TierOut]
    voucher_types: list[CampaignTypeOut]  # each with the enterprise's yearly cap of its type
    provider_yearly_cap_fen: int = Field(
        description="服务机构年度上限：一家服务机构一年可累计结算的服务券补贴（分；平台人员可为个别机构调整）"
    )


class VoucherTypesOut(BaseModel):
    year: int
    items: list[CampaignTypeOut]
