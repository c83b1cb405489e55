"""demands's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

A demand row is its own aggregate: every route that changes it locks it first
(``common.db.lock``). "One response per provider and demand" is a unique index, and the
board's response count is moved by an atomic ``UPDATE`` in the response's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from common.audit import AuditEntry  # noqa: F401 - demands' audit log is the common one
from common.orgs import OrgCopy  # noqa: F401 - the organisation copies (suspension hides a board entry)


def new_id() -> str:
    return str(uuid.uuid4())


def ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if default_now else None
    )


class Demand(SQLModel, table=True):
    """An enterprise's demand (需求): written by the enterprise, decided by a reviewer, shown on
    the public board (企业需求) once published."""

    __tablename__ = "demands"
    __table_args__ = (
        CheckConstraint(
            "(budget_mode = 'quote' AND budget_fen IS NULL) OR (budget_mode = 'fixed' AND budget_fen > 0)",
            name="ck_demands_budget",
        ),
        CheckConstraint("response_count >= 0", name="ck_demands_response_count"),
        CheckConstraint("char_length(content) <= 300", name="ck_demands_content_length"),
        Index("ix_demands_board", "status", "published_at"),
        Index("ix_demands_org", "org_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    demand_no: str = Field(max_length=20, unique=True)
    org_id: str = Field(max_length=36)
    org_name: str = Field(max_length=200)  # 需求企业, as certified when published
    contact_phone: str = Field(max_length=20)  # the account's phone (联系电话)
    created_by: str = Field(max_length=36)
    name: str = Field(max_length=100)
    category: str = Field(max_length=20)
    budget_mode: str = Field(max_length=10)  # quote | fixed
    budget_fen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    content: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20, index=True)
    review_reason: str | None = Field(default=None, sa_column=Column(Text))
    response_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    applied_at: datetime | None = Field(default=None, sa_column=ts(False, True))  # 申请时间
    published_at: datetime | None = Field(default=None, sa_column=ts())  # 发布时间
    reviewed_at: datetime | None = Field(default=None, sa_column=ts())
    closed_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class DemandResponse(SQLModel, table=True):
    """A provider's 我要对接: who to call, once per provider and demand."""

    __tablename__ = "demand_responses"
    __table_args__ = (UniqueConstraint("demand_id", "provider_id", name="uq_demand_responses_once"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    demand_id: str = Field(max_length=36, index=True)
    provider_id: str = Field(max_length=36)
    provider_name: str = Field(max_length=200)
    user_id: str = Field(max_length=36)
    contact_name: str = Field(max_length=50)
    phone: str = Field(max_length=20)
    message: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class PlatformMessage(SQLModel, table=True):
    """A user's 我要留言 to the platform, and staff's reply."""

    __tablename__ = "platform_messages"
    __table_args__ = (
        CheckConstraint("char_length(content) <= 500", name="ck_platform_messages_length"),
        Index("ix_platform_messages_user", "user_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(max_length=36)
    org_id: str | None = Field(default=None, max_length=36)
    org_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=20)
    content: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20, index=True)  # open | replied | closed
    reply: str | None = Field(default=None, sa_column=Column(Text))
    replied_by: str | None = Field(default=None, max_length=36)
    replied_at: datetime | None = Field(default=None, sa_column=ts())
    closed_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Notice(SQLModel, table=True):
    """A policy document, guide or notice on the portal (服务券管理办法, 企业操作指南, ...)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_published", "published_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=20)  # policy | guide | notice
    body_html: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    attachment_file_id: str | None = Field(default=None, max_length=36)
    attachment_name: str | None = Field(default=None, max_length=200)
    created_by: str = Field(max_length=36)
    published_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


# --- notifications (what needs a person now) ------------------------------------------------------


class Notification(SQLModel, table=True):
    """A notice to one user, the members of one organisation, or the users of one staff role
    (exactly one of them). ``seq`` is the stream's event id: taken from
    ``notification_sequence`` under its row lock, so notices commit in ``seq`` order and a
    reader that saw ``seq`` n has seen every notice before it."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("num_nonnulls(user_id, org_id, role) = 1", name="ck_notifications_one_recipient"),
        Index("ix_notifications_user", "user_id", "seq", postgresql_where=text("user_id IS NOT NULL")),
        Index("ix_notifications_org", "org_id", "seq", postgresql_where=text("org_id IS NOT NULL")),
        Index("ix_notifications_role", "role", "seq", postgresql_where=text("role IS NOT NULL")),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    kind: str = Field(max_length=60)
    title: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    link: str = Field(max_length=300)
    user_id: str | None = Field(default=None, max_length=36)
    org_id: str | None = Field(default=None, max_length=36)
    role: str | None = Field(default=None, max_length=20)
    event_id: str | None = Field(default=None, max_length=36)  # the event it was made from
    # when it happened (the event's occurred_at), or when demands decided it
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class NotificationRead(SQLModel, table=True):
    """One user read one notice (the read state of an organisation's or a role's notice is
    each member's own)."""

    __tablename__ = "notification_reads"

    notification_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=36)
    read_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class NotificationReadMark(SQLModel, table=True):
    """全部已读: every notice of the user up to ``read_through`` (a seq) is read, without a row
    per notice."""

    __tablename__ = "notification_read_marks"

    user_id: str = Field(primary_key=True, max_length=36)
    read_through: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class NotificationSequence(SQLModel, table=True):
    """The one row whose lock orders the notices (see :class:`Notification`)."""

    __tablename__ = "notification_sequence"

    id: int = Field(default=1, primary_key=True)
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
