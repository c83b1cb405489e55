"""The payment screen (合同信息, 支付信息, 实付大写金额) and the remittances (对公转账)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from common.money import PositiveFen, amount_in_words
from common.text import FreeText
from payments.domain.remittances import PLAN_LABELS, REMITTANCE_LABELS, PlanState, RemittanceState
from payments.schemas.refunds import RefundOut

ACCOUNT_METHOD = "对公转账"
TRANSFER_NOTICE = (
    "到账后1个工作日内核实并开通, 部分银行处理慢会延期, 请耐心等待如果转账有问题, 我们会主动与你电话联系。"
)
INSTALLMENTS_NOTICE = "支持根据双方商谈的付款方式分次向服务机构汇款"


class RemittanceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "amount_fen": 1000000,
                    "bank_reference": "HX2024081300012345",
                    "payer_account": "4500 1001 9200 5001 2345",
                    "receipt_file_ids": ["0b7f3c2e-5d1a-4c8e-9f00-2a6b1c3d4e5f"],
                }
            ]
        },
    )

    amount_fen: PositiveFen = Field(le=10**13, description="汇款金额（分）")
    bank_reference: str = Field(min_length=1, max_length=100, description="银行流水号 / 交易参考号")
    payer_account: str = Field(min_length=1, max_length=100, description="付款账号")
    receipt_file_ids: list[str] = Field(default_factory=list, max_length=10, description="汇款凭证文件")


class RejectIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "银行流水中未查到该笔转账，请核对流水号"}]},
    )

    reason: FreeText = Field(min_length=1, max_length=500)


class PayeeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_name: str
    bank_name: str
    bank_region: str
    branch_name: str
    account_number: str


class RemittanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    amount_fen: int
    state: str
    bank_reference: str
    payer_account: str
    receipt_file_ids: list[str]
    payee_account_name: str
    payee_account_number: str
    reject_reason: str | None
    decided_role: str | None
    decided_at: datetime | None
    created_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label(self) -> str:
        return REMITTANCE_LABELS[RemittanceState(self.state)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def amount_upper(self) -> str:
        return amount_in_words(self.amount_fen)


class RemittanceRowOut(RemittanceOut):
    """A remittance in finance's queue."""

    enterprise_id: str
    provider_id: str
    order_no: str = Field(default="", description="订单编号")
    enterprise_name: str = Field(default="", description="企业名称")
    provider_name: str = Field(default="", description="服务机构名称")
    product_name: str = Field(default="", description="服务产品名称")


class PaymentOut(BaseModel):
    """GET /orders/{order_id}/payment: 合同信息 + 支付信息 + the transfers so far."""

    model_config = ConfigDict(from_attributes=True)

    order_id: str
    order_no: str
    contract_id: str
    enterprise_id: str
    provider_id: str
    state: str
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int
    paid_fen: int
    pending_fen: int
    outstanding_fen: int
    room_fen: int
    deposit_met: bool
    fully_paid: bool
    suggested_fen: int
    suggested_stage: str | None
    payee: PayeeOut | None
    remittances: list[RemittanceOut]
    refunds: list[RefundOut]  # after a termination: what is owed back to the enterprise
    termination_pending: bool = False  # a termination accepted here, awaiting contracts: no payout
    terminated_reason: str | None = None
    terminated_at: datetime | None = None
    actions: list[str]
    account_method: str = ACCOUNT_METHOD
    transfer_notice: str = TRANSFER_NOTICE
    installments_notice: str = INSTALLMENTS_NOTICE

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label(self) -> str:
        return PLAN_LABELS[PlanState(self.state)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def payable_upper(self) -> str:
        """实付大写金额(人民币)."""
        return amount_in_words(self.payable_fen)
