"""Rate limits per client address and per user, shared by every gateway replica.

Counting every request in PostgreSQL would put a database round trip on the hot path. Each
replica instead counts locally and, every ``sync_interval`` seconds, adds its new counts to
the shared row of each (subject, window) and reads back the total of all replicas; the first
request of a subject in a window reads its shared total once. A decision uses the last
shared total plus what this replica counted since: replicas agree within one sync interval,
and the limit is never exceeded by more than what the other replicas admit in that interval. If the database is away the limiter fails open (logged):
rate limiting must not take the platform down.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from sqlalchemy import text

from common.db import Database
from common.metrics import RATE_LIMITED

log = structlog.get_logger(__name__)


@dataclass
class _Counter:
    shared: int = 0  # the total of all replicas at the last sync
    in_flight: int = 0  # counted here, being added to the shared row right now
    unsynced: int = 0  # counted here since then
    # The first read of the shared total, which every request of the window's first moment
    # awaits together (the counter exists before anyone awaits, so no count is lost).
    loading: asyncio.Future[None] | None = None

    @property
    def total(self) -> int:
        return self.shared + self.in_flight + self.unsynced


class RateLimiter:
    def __init__(self, db: Database | None, *, window_seconds: int = 60, sync_interval: float = 0.5) -> None:
        self.db = db
        self.window = window_seconds
        self.sync_interval = sync_interval
        self._counters: dict[tuple[str, int], _Counter] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def window_start(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(now // self.window) * self.window

    async def hit(self, key: str, limit: int, now: float | None = None) -> int | None:
        """Count one request for ``key``; return seconds to wait when over ``limit``."""
        start = self.window_start(now)
        counter = self._counters.get((key, start))
        if counter is None:
            # Made and stored before any await: concurrent first requests share it.
            counter = self._counters[(key, start)] = _Counter()
            counter.loading = asyncio.ensure_future(self._load(counter, key, start))
        if counter.loading is not None and not counter.loading.done():
            await asyncio.shield(counter.loading)
        # From here to the count there is no await: deciding and counting are one step.
        if counter.total >= limit:
            RATE_LIMITED.labels(key.split(":", 1)[0]).inc()
            current = time.time() if now is None else now
            return max(1, int(start + self.window - current) + 1)
        counter.unsynced += 1
        return None

    async def _load(self, counter: _Counter, key: str, start: int) -> None:
        # A sync may have run meanwhile and brought a newer total: keep the larger.
        counter.shared = max(counter.shared, await self._shared_count(key, start))

    async def _shared_count(self, key: str, start: int) -> int:
        if self.db is None:
            return 0
        try:
            async with self.db.session() as session:
                found = await session.scalar(
                    text("SELECT count FROM rate_counters WHERE key = :k AND window_start = :s"),
                    {"k": key, "s": start},
                )
            return int(found or 0)
        except Exception:  # noqa: BLE001 - fail open
            log.warning("rate_limit_read_failed")
            return 0

    async def sync(self) -> None:
        """Push local counts and pull the shared totals of the current window."""
        if self.db is None:
            return
        current = self.window_start()
        # Forget windows that are over.
        for k in [k for k in self._counters if k[1] < current]:
            del self._counters[k]
        if not self._counters:
            return
        keys = list(self._counters)
        deltas = [self._counters[k].unsynced for k in keys]
        for k in keys:
            c = self._counters[k]
            c.in_flight, c.unsynced = c.unsynced, 0
        try:
            async with self.db.transaction() as session:
                rows = (
                    await session.execute(
                        text(
                            "INSERT INTO rate_counters (key, window_start, count) "
                            "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:starts AS bigint[]), CAST(:deltas AS bigint[])) "
                            "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + excluded.count "
                            "RETURNING key, window_start, count"
                        ),
                        {"keys": [k[0] for k in keys], "starts": [k[1] for k in keys], "deltas": deltas},
                    )
                ).all()
                if current % (self.window * 5) == 0 or len(rows) > 10_000:
                    await session.execute(
                        text("DELETE FROM rate_counters WHERE window_start < :old"),
                        {"old": current - 2 * self.window},
                    )
        except Exception:  # noqa: BLE001 - fail open, keep the counts for the next try
            for k in keys:
                if (unsent := self._counters.get(k)) is not None:
                    unsent.unsynced, unsent.in_flight = unsent.unsynced + unsent.in_flight, 0
            log.warning("rate_limit_sync_failed")
            return
        for key, start, count in rows:
            counter = self._counters.get((key, int(start)))
            if counter is not None:
                counter.shared, counter.in_flight = int(count), 0

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.sync_interval)
            await self.sync()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="rate-limit-sync")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.sync()
