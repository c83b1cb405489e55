"""站内通知: what a user sees of a notice."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.pagination import Page


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int = Field(description="通知序号（实时推送的事件 id，单调递增）")
    kind: str = Field(description="通知类型（稳定代码，如 order_awaiting_acceptance）")
    title: str
    body: str
    link: str = Field(description="相关对象的 API 路径")
    read: bool
    created_at: datetime


class NotificationPage(Page[NotificationOut]):
    unread: int = Field(description="未读通知数")


class ReadAllOut(BaseModel):
    unread: int = Field(description="未读通知数（全部已读后新到的）")
    read_through: int = Field(description="已读至的通知序号")
