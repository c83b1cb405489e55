"""服务券兑付: settlement claims, their documents and decisions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from common.money import amount_in_words
from common.text import FreeText, Name
from payments.domain.settlements import LABELS, SettlementState


class ClaimIn(BaseModel):
    """The provider's claim: the invoice, the enterprise's transfer receipt(s), the service's
    proof; each list required."""

    model_config = ConfigDict(extra="forbid")

    invoice_file_ids: list[str] = Field(default_factory=list, max_length=10, description="发票")
    receipt_file_ids: list[str] = Field(default_factory=list, max_length=10, description="企业转账凭证")
    proof_file_ids: list[str] = Field(default_factory=list, max_length=20, description="服务完成证明")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText | None = Field(default=None, max_length=500)


class RejectClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText = Field(min_length=1, max_length=500)


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

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
