"""orders's request and response models; every Out is built with ``model_validate``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, field_validator

from common.money import Flag, amount_in_words
from common.text import FreeText
from orders.domain import EVALUATION_MAX_CHARS, RATING_LABELS, STATUS_LABELS, Status, VoucherState, tab_of

ACTOR_LABELS = {"enterprise": "企业", "provider": "服务机构", "staff": "平台", "system": "系统"}


class OrderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"product_id": "5f0c8a2e-3b1d-4e6f-8a9b-0c1d2e3f4a5b", "use_voucher": True}]
        },
    )

    # an id, never a path: it goes into catalog's URL
    product_id: str = Field(
        min_length=1, max_length=36, pattern=r"^[0-9A-Za-z_-]+$", description="服务产品编号"
    )
    use_voucher: Flag = Field(default=True, description="勾选使用服务券")


class CancelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "企业经营计划调整，暂不需要该服务"}]}
    )

    reason: FreeText | None = Field(default=None, max_length=200, description="取消原因")


class RejectIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "本月服务排期已满，无法按期提供服务"}]}
    )

    reason: FreeText = Field(min_length=1, max_length=200, description="拒绝接单原因")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("不能为空")
        return value.strip()


class EvaluationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"rating": 5, "content": "服务专业，诊断报告对企业改进很有帮助"}]},
    )

    rating: int = Field(ge=1, le=5, description="评价等级综合评分，1-5 星")
    content: FreeText = Field(default="", max_length=EVALUATION_MAX_CHARS, description="评价内容，200字以内")


class OrderOut(BaseModel):
    """A row of 我购买的服务 / 我的服务订单 (and the answer to POST /orders)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    order_no: str
    status: Status
    product_id: str
    product_name: str
    category: str
    voucher_type: str
    provider_id: str
    provider_name: str
    enterprise_id: str
    enterprise_name: str
    amount_fen: int = Field(description="服务金额（下单时的平台销售价）")
    subsidy_fen: int = Field(
        validation_alias=AliasChoices("current_subsidy_fen", "subsidy_fen"),
        description="补贴金额：提交时为服务券报价，预留后为预留金额，签约后为合同抵扣金额",
    )
    payable_fen: int = Field(description="实付金额")
    use_voucher: bool
    voucher_id: str | None = None
    voucher_no: str | None = None
    contract_total_fen: int | None = Field(default=None, description="合同金额，签约后")
    created_at: datetime
    actions: list[str] = Field(
        default_factory=list,
        description=(
            "调用者当前可执行的操作：订单的（cancel 取消订单、pay 支付、evaluate 评价、accept 接单、"
            "reject 拒绝、start_service 开始服务、complete_service 服务完成）及合同的（view_contract "
            "查看合同、edit_contract 起草/修改合同、agree_contract 同意、return_contract 退回修改、"
            "sign_contract 签署），列表无需逐行查询合同"
        ),
    )
    current_step: int | None = Field(
        default=None,
        ge=1,
        le=6,
        description=(
            "订单状态条（申请服务、服务机构接单、签订合同、线上支付、完成服务、评价服务）的当前步骤，"
            "1-6；六步都完成时为 6；订单取消或终止后为 null"
        ),
    )
    steps_done: list[int] = Field(
        default_factory=list, description="状态条上已完成的步骤（1-6），如待支付尾款时为 [1, 2, 3, 5]"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tab(self) -> str:
        return tab_of(self.status)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def payable_upper(self) -> str:
        """实付大写金额（人民币）."""
        return amount_in_words(self.payable_fen)


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    label: str
    at: datetime
    actor: str
    actor_id: str | None = None
    detail: str | None = None
    amount_fen: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def actor_label(self) -> str:
        """Who, as the screen says it."""
        return ACTOR_LABELS.get(self.actor, self.actor)


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rating: int
    content: str
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rating_label(self) -> str:
        return RATING_LABELS[self.rating]


class ProgressOut(BaseModel):
    """服务进度: 开始服务, 服务中, 服务完成."""

    label: str
    done: bool
    at: datetime | None = None


class ContactOut(BaseModel):
    """A party's contact (联系人, 联系电话), in full."""

    model_config = ConfigDict(from_attributes=True)

    name: str | None = Field(default=None, description="联系人")
    phone: str | None = Field(default=None, description="联系电话（服务机构为其服务电话）")


class ContactsOut(BaseModel):
    """双方接洽: both parties' contacts as they stood when the order was submitted (null for a
    party the order does not know: orders submitted before contacts were kept)."""

    model_config = ConfigDict(from_attributes=True)

    enterprise: ContactOut | None = Field(
        default=None,
        validation_alias=AliasChoices("enterprise_contact", "enterprise"),
        description="企业联系人：提交订单的账号（法人或经办人）及其手机号",
    )
    provider: ContactOut | None = Field(
        default=None,
        validation_alias=AliasChoices("provider_contact", "provider"),
        description="服务机构联系人及服务电话",
    )


class OrderDetailOut(OrderOut):
    market_price_fen: int
    max_subsidy_fen: int
    ratio_bp: int
    voucher_state: VoucherState
    committed_fen: int
    settled_fen: int
    contract_id: str | None = None
    contract_subsidy_fen: int | None = None
    contract_payable_fen: int | None = None
    deposit_fen: int | None = None
    balance_fen: int | None = None
    paid_fen: int
    outstanding_fen: int | None = None
    deposit_met: bool
    fully_paid: bool
    cancel_reason: str | None = None
    cancelled_by: str | None = None
    cancel_requested_in: str | None = None
    cancel_refused_reason: str | None = Field(default=None, description="取消或终止申请未获同意的原因")
    termination_pending: bool = Field(
        default=False, description="合同终止处理中（此时不能支付、取消或推进服务）"
    )
    accepted_at: datetime | None = None
    signed_at: datetime | None = None
    service_started_at: datetime | None = None
    service_completed_at: datetime | None = None
    completed_at: datetime | None = None
    ended_at: datetime | None = None
    timeline: list[StepOut] = Field(default_factory=list)
    service_progress: list[ProgressOut] = Field(default_factory=list)
    evaluation: EvaluationOut | None = None
    contacts: ContactsOut | None = Field(
        default=None, description="双方联系方式：订单双方及平台可见，其他人看不到订单"
    )


class Tab(StrEnum):
    """The manual's tabs of 我购买的服务 / 我的服务订单 (全部 first)."""

    all = "all"
    awaiting_acceptance = "awaiting_acceptance"
    awaiting_contract = "awaiting_contract"
    awaiting_payment = "awaiting_payment"
    awaiting_service = "awaiting_service"
    in_service = "in_service"
    completed = "completed"
    cancelled = "cancelled"
    evaluated = "evaluated"
