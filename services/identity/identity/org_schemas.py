"""Request and response models of the organisation, verification, file and staff routes
(field names are API.md's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from common.errors import FIELD_LABELS
from identity.schemas import OrganizationOut, Phone, Strict

FIELD_LABELS.update(
    {
        "role": "角色",
        "name": "名称",
        "uscc": "统一社会信用代码",
        "legal_rep_name": "法定代表人姓名",
        "legal_rep_id_type": "法定代表人证件类型",
        "legal_rep_id_number": "法定代表人证件号码",
        "agreed": "服务协议",
        "id_type": "证件类型",
        "id_number": "证件号码",
        "account_name": "银行开户名",
        "bank_name": "开户银行",
        "bank_region": "开户所在地",
        "branch_name": "开户支行名称",
        "account_number": "银行账号",
        "object_id": "认证对象",
        "organization_id": "组织编号",
        "reason": "原因",
        "active": "启用状态",
        "q": "关键词",
        "capability": "身份",
        "suspended": "停用状态",
        "page": "页码",
        "page_size": "每页条数",
        "file": "文件",
        "since": "起始时间",
        "actor": "操作人",
        "action": "操作类型",
        "limit": "条数",
    }
)

IdType = Literal["resident_id", "hk_macao_tw_permit", "foreign_permanent_residence"]
StaffRole = Literal["reviewer", "finance", "administrator"]


# --- organisation ------------------------------------------------------------------------------


class CertificationIn(Strict):
    """企业信息认证 (step 1)."""

    role: Literal["enterprise", "provider"]
    name: str = Field(min_length=2, max_length=100, description="企业名称/机构名称")
    uscc: str = Field(min_length=1, max_length=40, description="统一社会信用代码")
    legal_rep_name: str = Field(min_length=2, max_length=50)
    legal_rep_id_type: IdType
    legal_rep_id_number: str = Field(min_length=1, max_length=40)
    sms_code: str = Field(min_length=4, max_length=8, description="purpose certify, sent to your own phone")
    agreed: bool = Field(description="已阅读并同意《统一认证平台认证服务协议》")


class CertificationOut(BaseModel):
    organization: OrganizationOut
    access_token: str = Field(description="a fresh access token carrying the enterprise capability")
    token_type: str = "Bearer"
    expires_in: int


class AgentIn(Strict):
    """指定经办人 (step 2)."""

    name: str = Field(min_length=2, max_length=50)
    id_number: str = Field(min_length=1, max_length=40)
    phone: Phone
    id_type: IdType = "resident_id"


class AgentOut(BaseModel):
    id: str
    name: str
    phone: str = Field(description="masked: 138****6433")
    id_type: str | None
    id_number: str | None = Field(description="masked")
    created_at: datetime | None


class OrganizationDetailOut(OrganizationOut):
    certified_at: datetime | None = None
    agent: AgentOut | None = None
    bank_account_set: bool = False


class BankAccountIn(Strict):
    """支付认证."""

    account_name: str = Field(min_length=2, max_length=200, description="银行开户名 = the certified name")
    bank_name: str = Field(min_length=2, max_length=100)
    bank_region: str = Field(min_length=2, max_length=100)
    branch_name: str = Field(min_length=2, max_length=200)
    account_number: str = Field(min_length=1, max_length=40, description="8-30 digits")


class BankAccountOut(BaseModel):
    account_name: str
    bank_name: str
    bank_region: str
    branch_name: str
    account_number: str
    account_number_masked: str
    updated_at: datetime | None


# --- identity verification ---------------------------------------------------------------------


class VerificationIn(Strict):
    purpose: Literal["seal", "sign_contract"]
    object_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="required for sign_contract: the contract id",
    )


class VerificationStarted(BaseModel):
    verification_id: str
    state: str


class VerificationOut(BaseModel):
    verification_id: str
    purpose: str
    object_id: str | None
    state: Literal["pending", "passed", "failed"]
    token: str | None = Field(default=None, description="while passed: EdDSA JWT, typ idv")
    expires_in: int | None = None


# --- files -------------------------------------------------------------------------------------


class FileOut(BaseModel):
    file_id: str
    name: str
    content_type: str
    size: int
    sha256: str


class FileMetaOut(BaseModel):
    file_id: str
    organization_id: str | None
    uploader_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime | None = None


class GrantIn(Strict):
    organization_id: str = Field(min_length=1, max_length=36)
    reason: str | None = Field(default=None, max_length=200)


# --- staff -------------------------------------------------------------------------------------


class AdminOrganizationOut(BaseModel):
    id: str
    name: str
    uscc: str | None
    kind: str | None
    certified: bool
    certified_at: datetime | None
    capabilities: list[str]
    suspended: bool
    suspended_reason: str | None
    suspended_at: datetime | None
    legal_rep_name: str | None
    legal_rep_id_type: str | None
    legal_rep_id_number: str | None = Field(description="masked")
    created_at: datetime | None


class OrganizationPage(BaseModel):
    items: list[AdminOrganizationOut]
    total: int
    page: int
    page_size: int


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class StaffIn(Strict):
    phone: Phone
    name: str = Field(min_length=2, max_length=50)
    role: StaffRole
    password: str | None = Field(
        default=None, min_length=1, max_length=128, description="absent: set it with 忘记密码"
    )


class StaffUpdateIn(Strict):
    name: str | None = Field(default=None, min_length=2, max_length=50)
    role: StaffRole | None = None
    active: bool | None = None


class StaffOut(BaseModel):
    id: str
    phone: str
    name: str
    role: str
    active: bool
    has_password: bool
    created_at: datetime | None
    created_by: str | None


class StaffPage(BaseModel):
    items: list[StaffOut]
    total: int
    page: int
    page_size: int


class AuditOut(BaseModel):
    id: int | None = None
    service: str = "identity"
    at: datetime | None
    actor_id: str
    actor_role: str
    action: str
    target_type: str
    target_id: str
    reason: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    page: int
    page_size: int


class AuditFeed(BaseModel):
    items: list[AuditOut]
