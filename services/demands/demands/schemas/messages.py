"""我要留言 and staff's replies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from common.masking import mask_phone
from common.numbers import format_datetime
from common.text import FreeText
from demands.domain import messages as rules


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Characters are counted by the rule (500); the schema only refuses what no form sends.
    content: FreeText = Field(max_length=4000, description="留言内容（≤500 字）")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reply: FreeText = Field(min_length=1, max_length=2000, description="回复内容")


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    content: str
    status: str
    reply: str | None
    replied_at: datetime | None
    closed_at: datetime | None
    created_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_label(self) -> str:
        return rules.LABELS[rules.Status(self.status)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at_text(self) -> str:
        return format_datetime(self.created_at) if self.created_at else "--"


class StaffMessageOut(MessageOut):
    """Who wrote (the phone masked: staff answer on the platform, not by phone)."""

    user_id: str
    org_id: str | None
    org_name: str | None
    phone: str | None = Field(exclude=True)
    replied_by: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def author_phone(self) -> str:
        return mask_phone(self.phone) if self.phone else ""
