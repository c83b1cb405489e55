"""Requests and answers of the organisation routes: certification, agent, bank account
(field names are API.md's)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from common.errors import FIELD_LABELS
from common.money import Flag
from common.text import Name
from identity.schemas.auth import OrganizationOut, Phone, Strict

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


# --- organisation ------------------------------------------------------------------------------


class CertificationIn(Strict):
    """企业信息认证 (step 1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "role": "enterprise",
                    "name": "广西柳州精工机械制造有限公司",
                    "uscc": "91450100MA5KB3Q7XF",
                    "legal_rep_name": "韦明华",
                    "legal_rep_id_type": "resident_id",
                    "legal_rep_id_number": "45010219850505123X",
                    "sms_code": "482915",
                    "agreed": True,
                }
            ]
        }
    )

    role: Literal["enterprise", "provider"]
    name: Name = Field(min_length=2, max_length=100, description="企业名称/机构名称")
    uscc: str = Field(min_length=1, max_length=40, description="统一社会信用代码")
    legal_rep_name: Name = Field(min_length=2, max_length=50)
    legal_rep_id_type: IdType
    legal_rep_id_number: str = Field(min_length=1, max_length=40)
    sms_code: str = Field(min_length=4, max_length=8, description="purpose certify, sent to your own phone")
    agreed: Flag = Field(description="已阅读并同意《统一认证平台认证服务协议》（true/false）")


class CertificationOut(BaseModel):
    organization: OrganizationOut
    access_token: str = Field(description="a fresh access token carrying the enterprise capability")
    token_type: str = "Bearer"
    expires_in: int


class AgentIn(Strict):
    """指定经办人 (step 2)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "黄丽",
                    "id_type": "resident_id",
                    "id_number": "45010219850505123X",
                    "phone": "13977112345",
                }
            ]
        }
    )

    name: Name = Field(min_length=2, max_length=50)
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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_name": "广西柳州精工机械制造有限公司",
                    "bank_name": "中国工商银行",
                    "bank_region": "广西壮族自治区柳州市",
                    "branch_name": "中国工商银行柳州分行营业部",
                    "account_number": "2105000119200012345",
                }
            ]
        }
    )

    account_name: Name = Field(min_length=2, max_length=200, description="银行开户名 = the certified name")
    bank_name: Name = Field(min_length=2, max_length=100)
    bank_region: Name = Field(min_length=2, max_length=100)
    branch_name: Name = Field(min_length=2, max_length=200)
    account_number: str = Field(min_length=1, max_length=40, description="8-30 digits")


class BankAccountOut(BaseModel):
    account_name: str
    bank_name: str
    bank_region: str
    branch_name: str
    account_number: str
    account_number_masked: str
    updated_at: datetime | None
