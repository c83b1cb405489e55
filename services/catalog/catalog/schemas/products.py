"""Service products as their provider and the reviewers see them (服务产品管理, 审核)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common import money
from common.text import FREE_TEXT_CHECK, NAME_CHECK

MAX_FEN = 10**12  # 100 亿元: far above any service; keeps the integers sane

Fen = Annotated[money.Fen, Field(le=MAX_FEN)]


class ProductIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "企业管理诊断咨询",
                    "category": "企业诊断",
                    "description": "对企业战略、组织、生产与财务开展全面诊断，出具诊断报告和改进建议。",
                    "deliverables": "企业管理诊断报告一份",
                    "acceptance_criteria": "诊断报告经企业确认",
                    "market_price_fen": 6000000,
                    "platform_price_fen": 5000000,
                    "max_subsidy_fen": 2500000,
                }
            ]
        },
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NAME_CHECK
    ] = Field(description="服务产品名称")
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] = Field(
        description="服务类型（GET /categories）"
    )
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=5000), FREE_TEXT_CHECK
    ] = ""
    deliverables: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=2000), FREE_TEXT_CHECK
    ] = Field(default="", description="服务交付物")
    acceptance_criteria: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=2000), FREE_TEXT_CHECK
    ] = Field(default="", description="验收标准")
    market_price_fen: Fen = Field(description="市场指导价（分）")
    platform_price_fen: Fen = Field(description="平台销售价（分），不高于市场指导价")
    max_subsidy_fen: Fen = Field(description="最高补贴（分）")


class ReviewFlag(BaseModel):
    code: str
    message: str


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider_id: str
    name: str
    category: str
    voucher_type: str = ""
    description: str
    deliverables: str
    acceptance_criteria: str
    market_price_fen: int
    platform_price_fen: int
    max_subsidy_fen: int
    status: str
    status_label: str = ""
    review_flags: list[ReviewFlag]
    reject_reason: str | None
    actions: list[str] = []
    visits: int
    applications: int
    sales: int
    revenue_fen: int
    rating: float | None
    submitted_at: datetime | None
    listed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None


class AdminProductOut(ProductOut):
    provider_name: str = ""
    flagged: bool = False
