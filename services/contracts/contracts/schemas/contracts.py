"""The contracts' request and response models; Out models built with ``model_validate``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.money import Fen
from common.pagination import Page, TabbedPage
from common.text import FreeText


class ContractIn(BaseModel):
    """PUT /contracts/{id}: the provider's terms (the subsidy and payable are computed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "total_fen": 5000000,
                    "deposit_fen": 1000000,
                    "terms": (
                        "一、服务内容：乙方为甲方提供企业管理诊断咨询服务，出具企业管理诊断报告一份。\n"
                        "二、服务期限：自合同签署之日起 60 日内完成。\n"
                        "三、付款方式：甲方于合同签署后支付定金，服务完成后支付尾款，以对公转账方式支付。"
                    ),
                }
            ]
        },
    )

    total_fen: Fen = Field(le=10_000_000_000_00, description="合同总金额（分）")
    deposit_fen: Fen = Field(le=10_000_000_000_00, description="合同定金（分），不超过企业实付金额")
    terms: FreeText = Field(min_length=1, max_length=20_000, description="合同条款")


class ContractReasonIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "服务期限与双方约定不符，请改为 90 日"}]}
    )

    reason: FreeText = Field(min_length=1, max_length=500)


class ContractSignatureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    signed_at: datetime | None
    signed_sha256: str
    user_id: str


class ContractSignatures(BaseModel):
    enterprise: ContractSignatureOut | None = None
    provider: ContractSignatureOut | None = None


class ContractOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    order_no: str
    version: int
    state: str
    state_label: str = ""
    enterprise_id: str
    enterprise_name: str
    provider_id: str
    provider_name: str
    product_id: str
    product_name: str
    category: str
    price_fen: int
    reserved_fen: int
    ratio_bp: int
    max_subsidy_fen: int
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int
    total_upper: str = ""
    payable_upper: str = ""
    terms: str
    terms_set: bool
    return_reason: str | None
    void_reason: str | None
    terminate_reason: str | None
    terminated_by: str | None
    termination_request_id: str | None = None
    termination_requested_at: datetime | None = None
    termination_requested_by: str | None = None
    termination_request_reason: str | None = None
    termination_refused_at: datetime | None = None
    termination_refused_reason: str | None = None
    submitted_at: datetime | None
    agreed_at: datetime | None
    signed_at: datetime | None
    voided_at: datetime | None
    terminated_at: datetime | None
    created_at: datetime | None
    signatures: ContractSignatures = Field(default_factory=ContractSignatures)
    document_sha256: str | None
    actions: list[str] = Field(default_factory=list)


class ContractVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int
    terms: str
    submitted_at: datetime | None
    return_reason: str | None
    returned_at: datetime | None
    agreed_at: datetime | None


class ContractVersionsOut(Page[ContractVersionOut]):
    """One page of a contract's versions, oldest first."""

    contract_id: str


ContractPage = TabbedPage[ContractOut]
