"""Demands (需求) and responses (我要对接)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from common.money import PositiveFen
from common.numbers import format_datetime
from common.pagination import Page, TabbedPage
from common.text import FREE_TEXT_CHECK, NAME_CHECK, FreeText
from demands.domain import demands as rules

PHONE = r"^1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$"


class DemandIn(BaseModel):
    """发布需求 / 修改需求. The contact phone and the enterprise's name are the account's."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "生产车间数字化改造咨询",
                    "category": "数字化转型",
                    "budget_mode": "fixed",
                    "budget_fen": 15_000_000,
                    "content": "我司拟对两条机加工产线进行数字化改造，需要服务商提供设备联网与 MES 选型方案。",
                }
            ]
        },
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=rules.NAME_MAX), NAME_CHECK
    ] = Field(description="需求名称")
    category: str = Field(max_length=20, description="需求分类（九个服务分类之一）")
    budget_mode: Literal["quote", "fixed"] = Field(description="quote 需要服务商报价 / fixed 我有明确预算")
    budget_fen: PositiveFen | None = Field(default=None, description="预算金额（分），fixed 时必填")
    # Bytes are not the limit (the form counts characters): the rule checks 300 characters,
    # the schema only refuses what no form can send.
    content: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), FREE_TEXT_CHECK
    ] = Field(description="需求内容（≤300 字）")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText | None = Field(
        default=None, max_length=500, description="审核意见（退回、不通过时必填）"
    )


class ResponseIn(BaseModel):
    """我要对接: 若您能接近该需求，请留下联系方式等待需求方与您联系."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    contact_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NAME_CHECK
    ] = Field(description="联系人")
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=PHONE)] = Field(
        description="联系电话"
    )
    message: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), FREE_TEXT_CHECK
    ] = Field(description="对接说明")


def _shown(at: datetime | None) -> str:
    return format_datetime(at) if at else "--"


class _DemandBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    demand_no: str
    name: str
    category: str
    budget_mode: str
    budget_fen: int | None
    content: str
    org_name: str
    status: str
    response_count: int
    applied_at: datetime | None
    published_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_label(self) -> str:
        return rules.LABELS[rules.Status(self.status)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def budget_label(self) -> str:
        return rules.budget_label(self.budget_mode, self.budget_fen)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def response_label(self) -> str:
        return rules.response_label(self.response_count)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def applied_at_text(self) -> str:
        """申请时间 as the manual shows it."""
        return _shown(self.applied_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def published_at_text(self) -> str:
        """发布时间, ``--`` until published."""
        return _shown(self.published_at)


class MyDemandOut(_DemandBase):
    """The enterprise's own demand: its phone in full, the reviewer's reason."""

    contact_phone: str
    review_reason: str | None
    closed_at: datetime | None
    created_at: datetime | None


class StaffDemandOut(MyDemandOut):
    org_id: str


class PublicDemandOut(_DemandBase):
    """On the board: the phone masked (138****6433)."""

    contact_phone: str = Field(exclude=True)
    responded: bool = Field(default=False, description="调用方（服务机构）是否已申请对接")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def phone(self) -> str:
        return rules.masked_phone(self.contact_phone)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def category_description(self) -> str:
        return rules.CATEGORY_DESCRIPTIONS.get(self.category, "")


class BoardPage(Page[PublicDemandOut]):
    category: str | None = None
    category_description: str | None = None


class ResponseOut(BaseModel):
    """A response as the demand's enterprise sees it: who to call, in full."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    demand_id: str
    provider_id: str
    provider_name: str
    contact_name: str
    phone: str
    message: str
    created_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at_text(self) -> str:
        return _shown(self.created_at)


MyDemandPage = TabbedPage[MyDemandOut]
StaffDemandPage = TabbedPage[StaffDemandOut]
