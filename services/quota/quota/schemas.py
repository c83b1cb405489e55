"""quota's request and response models (*In / *Out); Out built with ``model_validate``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from common import money
from common.categories import VOUCHER_TYPES
from common.pagination import Page
from common.text import FREE_TEXT_CHECK, NAME_CHECK

VoucherType = Literal["general", "financing_guarantee", "equipment_leasing"]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), FREE_TEXT_CHECK
]
PositiveFen = Annotated[money.PositiveFen, Field(le=10**13)]


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- campaigns ---------------------------------------------------------------------------------


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
    categories: list[str] = []


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


# --- vouchers ----------------------------------------------------------------------------------


class MyVoucherOut(BaseModel):
    """One entry of the manual's quota screen (服务券配额申请) per voucher type."""

    voucher_type: str
    voucher_type_label: str
    state: Literal["not_applied", "pending_review", "rejected", "active", "expired"]
    state_label: str  # 申请 / 待审核 / 去使用 / 已过期
    policy_text: str = ""
    application_id: str | None = None
    reject_reason: str | None = None
    voucher_id: str | None = None
    voucher_no: str | None = None  # 券号
    tier: str | None = None
    total_fen: int = 0  # 优惠总额度
    used_fen: int = 0  # 已使用
    reserved_fen: int = 0
    remaining_fen: int = 0  # 剩余
    settled_fen: int = 0
    expired_fen: int = 0
    valid_from: date | None = None  # 配额有效期
    valid_to: date | None = None
    valid_label: str = ""
    pending_application_id: str | None = None  # a further special-type request under review


class MyVouchersOut(BaseModel):
    year: int
    items: list[MyVoucherOut]


class VoucherOut(Orm):
    id: str
    voucher_no: str
    enterprise_id: str
    enterprise_name: str = Field(default="", description="企业名称")
    campaign_year: int
    voucher_type: str
    tier: str | None
    ratio_bp: int
    valid_from: date
    valid_to: date
    total_fen: int
    remaining_fen: int
    reserved_fen: int
    used_fen: int
    settled_fen: int
    expired_fen: int
    expired_at: datetime | None
    created_at: datetime


class MovementOut(Orm):
    id: int
    kind: str
    kind_label: str = ""
    order_id: str | None
    amount_fen: int
    total_fen: int
    remaining_fen: int
    reserved_fen: int
    used_fen: int
    settled_fen: int
    expired_fen: int
    note: str | None
    at: datetime


class MovementsOut(Page[MovementOut]):
    """服务券台账: one page of the voucher's ledger, oldest first."""

    voucher_id: str
    voucher_no: str


class QuoteOut(BaseModel):
    """订单详情 before 提交订单: what the enterprise would pay with this voucher."""

    voucher_id: str
    voucher_no: str
    voucher_type: str
    product_id: str
    price_fen: int = Field(description="服务金额")
    subsidy_fen: int = Field(description="服务券抵扣金额")
    payable_fen: int = Field(description="实付金额")
    remaining_after_fen: int = Field(description="服务券余额剩余")
    max_subsidy_fen: int
    ratio_bp: int
    valid_from: date
    valid_to: date

    @computed_field(description="实付大写金额（人民币），如 贰拾壹万元整")  # type: ignore[prop-decorator]
    @property
    def payable_upper(self) -> str:
        return money.amount_in_words(self.payable_fen)


# --- applications ------------------------------------------------------------------------------


class ApplicationIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"voucher_type": "general"},
                {
                    "voucher_type": "equipment_leasing",
                    "requested_fen": 30_000_000,
                    "basis_fen": 200_000_000,
                    "proof_file_ids": ["5f0c7a1e-2b7d-4d8e-9a61-3c2f1b0e9d47"],
                },
            ]
        }
    )

    voucher_type: VoucherType
    requested_fen: PositiveFen | None = None
    basis_fen: PositiveFen | None = None
    proof_file_ids: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=10)
    ] = []


class ApplicationOut(Orm):
    id: str
    state: str
    state_label: str = ""
    enterprise_id: str
    enterprise_name: str
    uscc: str | None
    campaign_year: int
    voucher_type: str
    voucher_type_label: str = ""
    flagged: bool
    tier: str | None
    tier_fen: int | None
    requested_fen: int | None
    basis_fen: int | None
    proof_file_ids: list[str]
    approved_fen: int | None
    reason: str | None
    voucher_id: str | None
    created_at: datetime
    reviewed_at: datetime | None


class ApproveIn(BaseModel):
    approved_fen: PositiveFen | None = None
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), FREE_TEXT_CHECK] | None
    ) = None


class RejectIn(BaseModel):
    reason: Reason


# --- staff -------------------------------------------------------------------------------------


class RejectedRow(BaseModel):
    row: int
    uscc: str
    designation: str = ""
    reason: str


class ImportOut(BaseModel):
    accepted: int
    rejected: list[RejectedRow]
    rejected_total: int


class CapIn(BaseModel):
    cap_fen: PositiveFen
    reason: Reason
    year: int | None = None


class CapOut(Orm):
    provider_id: str
    year: int
    cap_fen: int
    reserved_fen: int
    used_fen: int
    reason: str | None


VOUCHER_TYPE_LABELS = VOUCHER_TYPES
MOVEMENT_LABELS = {
    "issue": "发放",
    "reserve": "预占",
    "commit": "抵扣",
    "release": "释放",
    "settle": "兑付",
    "expire": "过期",
    "reverse": "冲回",
}
