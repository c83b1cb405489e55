"""The tables every service has in its own database: outbox, inbox, timers, sequences.

Each service's first migration creates them with :func:`create_common_schema`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel


def _now_column(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable, server_default=None if nullable else func.now())


class OutboxRow(SQLModel, table=True):
    """An event written in the same transaction as the state change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's next batch, in write order, without sorting the backlog.
        Index("ix_outbox_next", "created_at", "sequence", "id", postgresql_where=text("sent_at IS NULL")),
        # "Is an earlier row of this aggregate still pending?" (a newer one never overtakes it).
        Index(
            "ix_outbox_aggregate_pending",
            "aggregate_id",
            "created_at",
            "sequence",
            postgresql_where=text("sent_at IS NULL"),
        ),
        # Retention: sent rows by age.
        Index("ix_outbox_sent", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=36)  # = event_id = AMQP message_id
    event_type: str = Field(max_length=120)
    aggregate_id: str = Field(max_length=120)
    sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    available_at: datetime | None = Field(default=None, sa_column=_now_column())
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    sent_at: datetime | None = Field(default=None, sa_column=_now_column(nullable=True))


class InboxRow(SQLModel, table=True):
    """(consumer, event_id) of every event a consumer applied, written with its effect."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_received", "received_at"),)  # retention by age

    consumer: str = Field(primary_key=True, max_length=120)
    event_id: str = Field(primary_key=True, max_length=36)
    event_type: str = Field(max_length=120)
    received_at: datetime | None = Field(default=None, sa_column=_now_column())


class TimerRow(SQLModel, table=True):
    """A durable timer: due work that survives restarts. A timer that keeps failing is
    parked (``state = 'dead'``) with its error, for the DLQ CLI to show and replay."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_timers_kind_key"),
        Index("ix_timers_due", "due_at", postgresql_where=text("state = 'scheduled'")),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    kind: str = Field(max_length=120)
    key: str = Field(max_length=200)
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    state: str = Field(
        default="scheduled", sa_column=Column(String(16), nullable=False, server_default="scheduled")
    )
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class AggregateSequence(SQLModel, table=True):
    """The last event sequence number handed out per aggregate."""

    __tablename__ = "aggregate_sequences"

    aggregate_id: str = Field(primary_key=True, max_length=120)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class EventOrderRow(SQLModel, table=True):
    """The ordering guard's memory: per (consumer, source, aggregate, stream) the sequence of
    the last event applied (common.bus.ordering)."""

    __tablename__ = "event_order"

    consumer: str = Field(primary_key=True, max_length=120)
    source: str = Field(primary_key=True, max_length=40)
    aggregate_id: str = Field(primary_key=True, max_length=120)
    stream: str = Field(primary_key=True, max_length=40, default="")
    last_sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class IdempotencyRow(SQLModel, table=True):
    """An ``Idempotency-Key`` of an HTTP command and, once done, its response
    (common.idempotency)."""

    __tablename__ = "idempotency_keys"

    caller: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=16)  # in_flight | done
    status_code: int | None = Field(default=None, sa_column=Column(Integer))
    response: Any = Field(default=None, sa_column=Column(JSONB))
    lease_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    # The claim holding the key (a uuid per claim): ``done`` and the give-back act only on it.
    token: str | None = Field(default=None, sa_column=Column(String(36)))


def add_idempotency_token(bind: Connection) -> None:
    """For a database made before claims carried a token (a service's migration calls it;
    a database made since has the column already, from :func:`create_common_schema`)."""
    bind.execute(text("ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS token varchar(36)"))


COMMON_TABLES = [
    SQLModel.metadata.tables[name]
    for name in ("outbox", "inbox", "timers", "aggregate_sequences", "event_order", "idempotency_keys")
]


def create_common_schema(bind: Connection) -> None:
    """Create the shared tables and the number sequence (used by a service's first migration)."""
    for table in COMMON_TABLES:
        table.create(bind=bind, checkfirst=True)
    bind.execute(text("CREATE SEQUENCE IF NOT EXISTS number_seq"))


def drop_common_schema(bind: Connection) -> None:
    for table in reversed(COMMON_TABLES):
        table.drop(bind=bind, checkfirst=True)
    bind.execute(text("DROP SEQUENCE IF EXISTS number_seq"))
