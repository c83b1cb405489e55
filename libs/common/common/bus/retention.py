"""Retention: what the bus keeps, and for how long.

Sent outbox rows, inbox rows and dead timers would otherwise grow forever. The job is a
durable timer (``bus.retention``) in each service's own database, so it survives restarts,
runs on one replica at a time (the timer row's lock) and, whatever replica runs it, does the
same thing: it deletes, in bounded batches, what is older than its age, and schedules its
next run. Running it twice changes nothing more than running it once.

The ages are settings read from the environment (shared by every service):

- ``BUS_OUTBOX_RETENTION_DAYS`` (7): sent outbox rows (pending ones are never pruned);
- ``BUS_INBOX_RETENTION_DAYS`` (30): inbox rows, the memory that makes a redelivery
  harmless. It must outlive the replay window:
- ``BUS_REPLAY_WINDOW_DAYS`` (14): how old an event a DLQ replay still accepts
  (``voucher-dlq replay`` refuses an older one with the reason, see :mod:`common.bus.dlq`);
- ``BUS_DEAD_TIMER_RETENTION_DAYS`` (90): dead (parked) timers, the in-process DLQ;
- ``BUS_RETENTION_INTERVAL`` (3600 s): how often the job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import Database
from common.tables import TimerRow
from common.timers import TimerHandler, schedule, utcnow

log = structlog.get_logger(__name__)

RETENTION_TIMER = "bus.retention"
BATCH = 5000


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUS_", extra="ignore", hide_input_in_errors=True)

    outbox_retention_days: float = Field(default=7, gt=0)
    inbox_retention_days: float = Field(default=30, gt=0)
    replay_window_days: float = Field(default=14, gt=0)
    dead_timer_retention_days: float = Field(default=90, gt=0)
    retention_interval: float = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _inbox_outlives_replays(self) -> RetentionSettings:
        if self.inbox_retention_days <= self.replay_window_days:
            raise ValueError(
                "BUS_INBOX_RETENTION_DAYS must be longer than BUS_REPLAY_WINDOW_DAYS: a replayed "
                "event older than the inbox's memory could be applied twice"
            )
        return self


@dataclass
class Pruned:
    outbox: int = 0
    inbox: int = 0
    timers: int = 0


async def _delete_in_batches(db: Database, sql: str, cutoff: object) -> int:
    total = 0
    while True:
        async with db.transaction() as session:
            result = await session.execute(text(sql), {"cutoff": cutoff, "n": BATCH})
            n = result.rowcount or 0  # type: ignore[attr-defined]
        total += n
        if n < BATCH:
            return total


async def prune(db: Database, settings: RetentionSettings | None = None) -> Pruned:
    """Delete what is older than its age (idempotent; bounded batches, each committed)."""
    settings = settings or RetentionSettings()
    now = utcnow()
    pruned = Pruned(
        outbox=await _delete_in_batches(
            db,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL "
            "AND sent_at < :cutoff LIMIT :n FOR UPDATE SKIP LOCKED)",
            now - timedelta(days=settings.outbox_retention_days),
        ),
        inbox=await _delete_in_batches(
            db,
            "DELETE FROM inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM inbox "
            "WHERE received_at < :cutoff LIMIT :n FOR UPDATE SKIP LOCKED)",
            now - timedelta(days=settings.inbox_retention_days),
        ),
        timers=await _delete_in_batches(
            db,
            "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE state = 'dead' "
            "AND coalesce(due_at, created_at) < :cutoff LIMIT :n FOR UPDATE SKIP LOCKED)",
            now - timedelta(days=settings.dead_timer_retention_days),
        ),
    )
    if pruned.outbox or pruned.inbox or pruned.timers:
        log.info("bus_pruned", outbox=pruned.outbox, inbox=pruned.inbox, timers=pruned.timers)
    return pruned


async def ensure_scheduled(db: Database, settings: RetentionSettings | None = None) -> None:
    """Schedule the job unless it already is (called at every start: idempotent)."""
    async with db.transaction() as session:
        exists = (
            await session.execute(
                text("SELECT 1 FROM timers WHERE kind = :k AND key = 'all'"), {"k": RETENTION_TIMER}
            )
        ).first()
        if exists is None:
            await schedule(session, RETENTION_TIMER, "all", utcnow() + timedelta(seconds=60))


def retention_handler(db: Database, settings: RetentionSettings | None = None) -> TimerHandler:
    """The timer handler: prune, then schedule the next run (the timer row itself is
    deleted when this returns; ``schedule`` re-creates it in the same transaction)."""
    settings = settings or RetentionSettings()

    async def run(session: AsyncSession, timer: TimerRow) -> None:
        await prune(db, settings)
        next_run = utcnow() + timedelta(seconds=settings.retention_interval)
        # The worker deletes the timer row by id after this; a new row (new id) is kept.
        await session.execute(text("DELETE FROM timers WHERE id = :id"), {"id": timer.id})
        await schedule(session, RETENTION_TIMER, "all", next_run)

    return run
