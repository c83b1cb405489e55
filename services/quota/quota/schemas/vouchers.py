"""Vouchers: the enterprise's quota screen, a voucher, its journal and the subsidy preview."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from common import money
from common.categories import VOUCHER_TYPES
from common.pagination import Page
from quota.schemas import Orm


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
