"""Answers of the reference lookups (开户所在地, 开户银行, 开户支行)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.errors import FIELD_LABELS

FIELD_LABELS.update({"parent": "上级行政区划", "region": "所在地", "bank": "银行"})


class RegionOut(BaseModel):
    code: str = Field(description="GB/T 2260 行政区划代码（6位）", examples=["450100"])
    name: str = Field(examples=["南宁市"])
    full_name: str = Field(description="省份+城市，开户所在地填写此值", examples=["广西壮族自治区南宁市"])
    parent: str | None = Field(description="所属省份的代码，省份为 null", examples=["450000"])
    level: int = Field(description="1 省级，2 地级市", examples=[2])
    selectable: bool = Field(description="可作为开户所在地（地级市或直辖市）")


class BankOut(BaseModel):
    name: str = Field(examples=["中国工商银行"])
    bank_code: str = Field(description="行别代码（3位）", examples=["102"])


class BankBranchOut(BaseModel):
    name: str = Field(description="开户支行名称", examples=["中国工商银行南宁分行营业部"])
    bank: str = Field(description="开户银行", examples=["中国工商银行"])
    bank_code: str = Field(description="行别代码（3位）", examples=["102"])
    cnaps_code: str | None = Field(description="12位联行号（支付系统行号），数据中没有时为 null")
    region: str = Field(description="所在地的行政区划代码", examples=["450100"])
    region_name: str = Field(description="所在地全称", examples=["广西壮族自治区南宁市"])
