"""Provider applications (申请入驻平台) and profiles (服务机构信息)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common.text import FREE_TEXT_CHECK, NAME_CHECK

PHONE = r"^(1\d{10}|0\d{2,3}-?\d{7,8}(-\d{1,6})?|400-?\d{3}-?\d{4})$"

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NAME_CHECK]


PROFILE_EXAMPLE: dict[str, Any] = {
    "profile": "专注制造业企业数字化转型咨询与工业软件实施，服务广西区内制造业企业 200 余家。",
    "categories": ["数字化转型", "企业诊断"],
    "contact_name": "李明",
    "contact_phone": "0771-5678123",
    "address": "广西壮族自治区南宁市青秀区民族大道 100 号",
    "working_hours": "周一至周五 08:00:00-18:00:00",
}


class ProviderProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PROFILE_EXAMPLE]})

    profile: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), FREE_TEXT_CHECK
    ] = Field(description="机构简介")
    categories: list[str] = Field(min_length=1, max_length=9, description="服务类型（平台九类之一或多项）")
    contact_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NAME_CHECK
    ] = Field(description="联系人（订单双方接洽时企业看到）")
    # The provider's service hotline: public, in full, on its product pages and 机构详情, and on
    # its orders for the enterprise (schemas.listing says why).
    contact_phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=PHONE)] = Field(
        description="服务电话（机构的服务热线，对外公开、完整展示）"
    )
    address: Text200 = Field(description="服务机构地址")
    working_hours: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NAME_CHECK
    ] = Field(description="工作时间，如 周一至周五 08:00:00-18:00:00")


class ProviderApplicationIn(ProviderProfileIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    **PROFILE_EXAMPLE,
                    "name": "广西北软软件股份有限公司",
                    "proof_file_ids": ["0b7f3c2e-5d1a-4c8e-9f00-2a6b1c3d4e5f"],
                }
            ]
        },
    )

    proof_file_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=10, description="资质证明文件（POST /files 上传后的编号）"
    )
    name: Text200 | None = Field(default=None, description="机构名称（缺省为认证时的单位名称）")


class ProviderApplicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    org_id: str
    org_name: str
    state: str
    state_label: str = ""
    reject_reason: str | None
    profile: str
    categories: list[str]
    contact_name: str
    contact_phone: str
    address: str
    working_hours: str
    proof_file_ids: list[str]
    created_at: datetime | None
    decided_at: datetime | None


class ProviderProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    org_id: str
    name: str
    profile: str
    categories: list[str]
    contact_name: str
    contact_phone: str
    address: str
    working_hours: str
    approved_at: datetime | None
    updated_at: datetime | None


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "资质证明文件不清晰，请重新上传营业执照扫描件"}]},
    )

    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), FREE_TEXT_CHECK] | None
    ) = None
