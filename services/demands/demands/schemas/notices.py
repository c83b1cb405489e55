"""The portal's notices and policy documents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from common.numbers import format_date_cn
from common.text import NAME_CHECK, FreeText
from demands.domain import notices as rules

Kind = Literal["policy", "guide", "notice"]


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NAME_CHECK]
    kind: Kind = Field(description="policy 政策文件 / guide 操作指南 / notice 通知公告")
    body_html: FreeText = Field(default="", max_length=200_000, description="正文（富文本，HTML）")
    attachment_file_id: str | None = Field(default=None, max_length=36, description="PDF 附件（/files 上传）")


class NoticeSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    kind: str
    attachment_name: str | None
    published_at: datetime | None
    updated_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind_label(self) -> str:
        return rules.KINDS[self.kind]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def published_on(self) -> str:
        return format_date_cn(self.published_at) if self.published_at else ""


class NoticeOut(NoticeSummaryOut):
    body_html: str
    attachment_file_id: str | None
