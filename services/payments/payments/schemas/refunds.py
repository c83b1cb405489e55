"""Refunds due after a termination."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from common.text import Name
from payments.domain.refunds import LABELS, RefundState


class MarkRefundedIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"refund_reference": "TK2024090100001234"}]},
    )

    refund_reference: Name = Field(min_length=1, max_length=100, description="退款流水号")


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    order_no: str
    remittance_id: str
    enterprise_id: str
    provider_id: str
    enterprise_name: str = Field(default="", description="企业名称")
    provider_name: str = Field(default="", description="服务机构名称")
    product_name: str = Field(default="", description="服务产品名称")
    amount_fen: int
    state: str
    refund_reference: str | None
    refunded_at: datetime | None
    created_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label(self) -> str:
        return LABELS[RefundState(self.state)]
