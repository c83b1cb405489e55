"""Durable timers: rows with a due time, run by a worker that survives restarts.

A handler runs inside the timer's transaction (in a savepoint): when it succeeds the timer
row is deleted in the same commit as the handler's effect; when it raises, its effect is
rolled back, the timer is retried with backoff and, after the last retry, parked as
``dead`` with the error (the DLQ CLI lists and replays dead timers).
Several workers may run at once: each row is taken with ``FOR UPDATE SKIP LOCKED``. A worker
takes only the kinds it has a handler for: a timer of a kind this replica does not know
(a newer replica's, during a rolling upgrade) waits for one that does, it never dies here.
A transient failure of the database (unreachable, a serialization failure, a deadlock)
spends none of the timer's retries.

``cancel()`` never waits behind a running timer: it removes the timer only when nobody is
running it (``SKIP LOCKED``) and says so. When it returns False the timer is firing (or has
fired) right now: re-check the aggregate under its lock (``common.db.lock``), as the timer's
handler re-checks it under the same lock, and let whoever comes second see what the first
one did.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, update

# sqlmodel's select, not sqlalchemy's: ``session.exec()`` of a sqlalchemy ``select(TimerRow)``
# yields ``Row`` tuples (``row.kind`` -> AttributeError), so no timer could ever run; sqlmodel's
# yields ``TimerRow`` instances.
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import Database, raw
from common.tables import TimerRow
from common.worker import PollingWorker

log = structlog.get_logger(__name__)

TimerHandler = Callable[[AsyncSession, TimerRow], Awaitable[None]]


class RetryLater(Exception):
    """Not now: the work is retried with backoff and parked after the last retry.

    Raised by event handlers when an event arrives before its aggregate is ready, and by
    timer handlers for transient conditions. Logged as information, not as an error.
    """


class Poison(Exception):
    """Never: the work is parked at once (a malformed or unknown event)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# A timer is set on hot paths (every order submitted): the transaction's own connection
# (common.db.raw), without the ORM's work per statement.
_SCHEDULE = (
    "INSERT INTO timers (kind, key, due_at, payload, attempts, state, last_error) "
    "VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7) "
    "ON CONFLICT ON CONSTRAINT uq_timers_kind_key DO UPDATE SET due_at = EXCLUDED.due_at, "
    "payload = EXCLUDED.payload, attempts = EXCLUDED.attempts, state = EXCLUDED.state, "
    "last_error = EXCLUDED.last_error"
)


async def schedule(
    session: AsyncSession,
    kind: str,
    key: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    *,
    attempts: int = 0,
    state: str = "scheduled",
    last_error: str | None = None,
) -> None:
    """Create or move the timer (kind, key), in the caller's transaction."""
    await (await raw(session)).execute(
        _SCHEDULE,
        kind,
        key,
        due_at,
        json.dumps(payload or {}, ensure_ascii=False),
        attempts,
        state,
        last_error,
    )


async def cancel(session: AsyncSession, kind: str, key: str) -> bool:
    """Remove the timer (kind, key) in the caller's transaction; True when it was removed.

    False when there is no such timer or a worker is running it right now (its row is
    locked: this does not wait for it, and the timer's effect may commit)."""
    target = (
        select(TimerRow.id)
        .where(col(TimerRow.kind) == kind, col(TimerRow.key) == key)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(TimerRow).where(col(TimerRow.id) == target).returning(col(TimerRow.id))
    )
    return result.first() is not None


async def dead_timers(session: AsyncSession, kind: str | None = None) -> list[TimerRow]:
    query = select(TimerRow).where(col(TimerRow.state) == "dead").order_by(col(TimerRow.id))
    if kind:
        query = query.where(col(TimerRow.kind) == kind)
    return list((await session.exec(query)).all())


async def revive(session: AsyncSession, ids: Sequence[int] | None = None, kind: str | None = None) -> int:
    """Put dead timers back on schedule, due now, with their attempts reset."""
    stmt = update(TimerRow).where(col(TimerRow.state) == "dead")
    if ids is not None:
        stmt = stmt.where(col(TimerRow.id).in_(list(ids)))
    if kind:
        stmt = stmt.where(col(TimerRow.kind) == kind)
    result = await session.execute(
        stmt.values(state="scheduled", attempts=0, due_at=utcnow(), last_error=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


class TimerWorker(PollingWorker):
    kind = "timer_worker"

    def __init__(
        self,
        db: Database,
        handlers: dict[str, TimerHandler],
        *,
        retry_delays: Sequence[float] = (1, 5, 30, 120, 600),
        poll_interval: float = 1.0,
        name: str = "timers",
    ) -> None:
        super().__init__(name, poll_interval)
        self.db = db
        self.handlers = handlers
        self.retry_delays = list(retry_delays)
        self.last_tick: datetime | None = None

    def register(self, kind: str, handler: TimerHandler) -> None:
        self.handlers[kind] = handler

    async def run_due(self, limit: int = 100) -> int:
        """Run timers that are due now, one transaction each; return how many ran."""
        done = 0
        while done < limit and not self._stopping:
            if not await self._run_one():
                break
            done += 1
        return done

    async def _run_one(self) -> bool:
        async with self.db.transaction() as session:
            if not self.handlers:
                return False
            row = (
                await session.exec(
                    select(TimerRow)
                    .where(
                        col(TimerRow.state) == "scheduled",
                        col(TimerRow.due_at) <= func.now(),
                        col(TimerRow.kind).in_(sorted(self.handlers)),
                    )
                    .order_by(col(TimerRow.due_at))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            timer: TimerRow = row
            handler = self.handlers[timer.kind]
            try:
                async with session.begin_nested():
                    await handler(session, timer)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
                from common.bus.transient import is_transient  # (common.bus imports this module)

                if await is_transient(exc, self.db):
                    self._reschedule_transient(timer, exc)
                else:
                    self._record_failure(timer, exc)
                session.add(timer)
                return True
            await session.execute(delete(TimerRow).where(col(TimerRow.id) == timer.id))
            return True

    def _reschedule_transient(self, timer: TimerRow, exc: Exception) -> None:
        """The database's failure, not the timer's: again soon, no retry spent."""
        timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        timer.due_at = utcnow() + timedelta(seconds=self.retry_delays[0] if self.retry_delays else 1)
        log.warning("timer_transient_failure", kind=timer.kind, key=timer.key, error=timer.last_error)

    def _record_failure(self, timer: TimerRow, exc: Exception) -> None:
        timer.attempts += 1
        timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if isinstance(exc, Poison) or timer.attempts > len(self.retry_delays):
            timer.state = "dead"
            log.error(
                "timer_parked",
                kind=timer.kind,
                key=timer.key,
                attempts=timer.attempts,
                error=timer.last_error,
            )
        else:
            timer.due_at = utcnow() + timedelta(seconds=self.retry_delays[timer.attempts - 1])
            level = log.info if isinstance(exc, RetryLater) else log.warning
            level(
                "timer_retry", kind=timer.kind, key=timer.key, attempts=timer.attempts, error=timer.last_error
            )

    async def tick(self) -> bool:
        await self.run_due()
        self.last_tick = utcnow()
        return False
