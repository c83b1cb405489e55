"""contracts's request and response models; Out models built with ``model_validate``."""

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


class VerificationTokenIn(BaseModel):
    """人脸认证通过后平台签发的一次性凭证（见 POST /me/identity-verifications）。"""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "verification_token": "eyJhbGciOiJFZERTQSJ9.eyJwdXJwb3NlIjoic2lnbl9jb250cmFjdCJ9.c2lnbmF0dXJl"
                }
            ]
        },
    )

    verification_token: str = Field(min_length=1, max_length=4096)


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


class SealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    org_id: str
    org_name: str
    certificate_serial: str
    created_at: datetime | None


ContractPage = TabbedPage[ContractOut]


# --- POST /contracts/verify (public) -------------------------------------------------------------


class SignatureVerificationOut(BaseModel):
    """One signature of the uploaded PDF, as pyHanko judged it against the platform's CA."""

    model_config = ConfigDict(from_attributes=True)

    field_name: str = Field(description="签名域名称（平台合同为 enterprise 甲方、provider 乙方）")
    signer_name: str = Field(description="签署方：签名证书主体中的单位名称（无单位名称时为证书通用名）")
    signer_subject: str = Field(description="签名证书主体（RFC 4514 格式）")
    issuer: str = Field(description="签名证书的签发者（RFC 4514 格式）")
    certificate_serial: str = Field(description="签名证书序列号（十六进制）")
    issued_by_platform_ca: bool = Field(
        description="签名证书是否由本平台电子签章 CA 签发（以 CA 公钥验证证书签名）"
    )
    signed_at: datetime | None = Field(description="签署时间（签署方在签名中声明的时间，未经第三方时间戳）")
    reason: str | None = Field(description="签署原因")
    intact: bool = Field(description="签名覆盖的文件内容是否完好（摘要与签署时一致）")
    cryptographically_valid: bool = Field(description="签名值是否有效（用证书公钥验证通过）")
    trusted: bool = Field(description="签名证书是否经本平台电子签章 CA 信任链校验通过（含有效期、密钥用途）")
    coverage: str = Field(
        description="签名覆盖范围：entire_file 整个文件；entire_revision 签署时的整个版本（其后有追加更新）；"
        "partial 部分；unclear 不明"
    )
    modification_level: str | None = Field(
        description="签署后的修改程度：none 无修改；lta_updates 仅长期验证数据；form_filling 仅追加签名或填写表单；"
        "annotations 批注；other 其他修改；null 无法判断"
    )
    docmdp_ok: bool | None = Field(
        description="签署后的修改是否符合文档的修改权限（DocMDP）；null 为无法判断"
    )
    modified_after_signing: bool = Field(
        description="签署后文件是否被修改：签署的内容被改动，或追加了签名和表单填写以外的修改"
    )
    valid: bool = Field(description="该签名是否有效：完好、签名值有效、经本平台 CA 信任且签署后未被修改")
    error: str | None = Field(description="签名无法校验时的原因")
    summary: str = Field(description="校验结论（中文）")


class ContractVerificationOut(BaseModel):
    """What the uploaded PDF's signatures prove."""

    model_config = ConfigDict(from_attributes=True)

    valid: bool = Field(
        description="总体结论：至少有一个签名，且每个签名都有效、由本平台 CA 签发、签署后未被修改"
    )
    signed_by_platform_ca: bool = Field(description="每个签名的证书是否都由本平台电子签章 CA 签发")
    modified_after_signing: bool = Field(description="是否有签名在签署后被改动或文件在签署后被修改")
    signature_count: int = Field(description="文件中的签名个数")
    summary: str = Field(description="校验结论（中文）")
    sha256: str = Field(description="上传文件的 SHA-256（可与合同详情中的 document_sha256 比对）")
    size: int = Field(description="上传文件的大小（字节）")
    ca_subject: str = Field(description="用于校验的本平台电子签章 CA 证书主体")
    ca_fingerprint_sha256: str = Field(description="本平台电子签章 CA 证书的 SHA-256 指纹（十六进制）")
    signatures: list[SignatureVerificationOut] = Field(description="每个签名的校验结果，按文件中的顺序")
