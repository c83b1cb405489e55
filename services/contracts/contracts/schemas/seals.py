"""The seals' request and response models: the 人脸认证 token a seal or a signature spends,
the seal, and what an uploaded PDF's signatures prove; Out models built with ``model_validate``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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


class SealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    org_id: str
    org_name: str
    certificate_serial: str
    created_at: datetime | None


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
