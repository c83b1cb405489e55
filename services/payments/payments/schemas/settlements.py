"""服务券兑付: settlement claims, their documents and decisions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from common.money import amount_in_words
from common.text import FreeText, Name
from payments.domain.settlements import LABELS, SettlementState


class ClaimIn(BaseModel):
    """申请兑付的材料：发票、企业转账凭证和服务完成证明，均为必填（POST /files 上传后的编号）。"""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "invoice_file_ids": ["0b7f3c2e-5d1a-4c8e-9f00-2a6b1c3d4e5f"],
                    "receipt_file_ids": ["1c8a4d3f-6e2b-4d9f-a011-3b7c2d4e5f60"],
                    "proof_file_ids": ["2d9b5e40-7f3c-4ea0-b122-4c8d3e5f6071"],
                }
            ]
        },
    )

    invoice_file_ids: list[str] = Field(default_factory=list, max_length=10, description="发票")
    receipt_file_ids: list[str] = Field(default_factory=list, max_length=10, description="企业转账凭证")
    proof_file_ids: list[str] = Field(default_factory=list, max_length=20, description="服务完成证明")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText | None = Field(default=None, max_length=500)


class RejectClaimIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "发票抬头与合同甲方不一致，请重新开具"}]},
    )

    reason: FreeText = Field(min_length=1, max_length=500)


class PayIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"payout_reference": "GK2024082000056789"}]},
    )

    payout_reference: Name = Field(min_length=1, max_length=100, description="打款流水号")


class SettlementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    order_no: str
    contract_id: str | None
    provider_id: str
    enterprise_id: str
    enterprise_name: str = Field(default="", description="企业名称")
    provider_name: str = Field(default="", description="服务机构名称")
    product_name: str = Field(default="", description="服务产品名称")
    amount_fen: int
    state: str
    invoice_file_ids: list[str]
    receipt_file_ids: list[str]
    proof_file_ids: list[str]
    claimed_at: datetime | None
    decided_at: datetime | None
    reject_reason: str | None
    payout_reference: str | None
    paid_at: datetime | None
    created_at: datetime | None
    actions: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label(self) -> str:
        return LABELS[SettlementState(self.state)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def amount_upper(self) -> str:
        return amount_in_words(self.amount_fen)
