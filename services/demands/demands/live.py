"""The live feed: new notices to this process's open streams (``GET /me/notifications/stream``).

One feed per process reads the notices after the last one it has seen (``seq > last``, one
indexed query for every stream it serves) and hands each to the streams whose reader sees it.
It reads when PostgreSQL says a notice committed (``LISTEN demands_notifications``: every
:func:`demands.service.notifications.add` sends a NOTIFY that PostgreSQL delivers at commit,
to every demands process, whichever one wrote it) and, as a safety net, every
``poll_seconds`` anyway: a NOTIFY lost while the listening connection was down (the database
restarted, a network cut) is found by the next poll, and without LISTEN at all the feed is a
plain poll. Notices commit in ``seq`` order, so ``seq > last`` never skips one. While no
stream is open the feed reads nothing: each NOTIFY names its notice's seq and the cursor moves
there (the saga's notices would otherwise cost a read each, nobody waiting for them).

Why LISTEN/NOTIFY with a poll behind it, rather than a 1 s poll alone (measured on this
machine, ``tests/test_notification_stream.py::test_live_delivery_latency``, 2 busy cores): from
the commit to a stream's queue, LISTEN a median of 4-13 ms (max 65 ms), a 1 s poll a median of
250-680 ms (half the interval expected) and up to the whole interval. The cost of LISTEN is one
connection per process (not per stream), and the poll behind it is one indexed query every
few seconds per process, whatever the number of streams.

A stream that falls behind (its client reads slower than notices come) is not given more
than ``backlog`` rows: it is told to catch up from the database (``Subscription.behind``),
so a slow client never grows this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text

from common.db import Database, connect
from demands.domain.notifications import Reader, Recipient, sees

log = structlog.get_logger(__name__)

CHANNEL = "demands_notifications"

_NEW = text(
    "SELECT id, seq, kind, title, body, link, user_id, org_id, role, created_at "
    "FROM notifications WHERE seq > :last ORDER BY seq LIMIT :n"
)
_LAST = text("SELECT coalesce(max(seq), 0) FROM notifications")


@dataclass(eq=False)  # one per stream, kept in a set by identity
class Subscription:
    """One open stream: the notices for its reader, in seq order, and a wake-up."""

    reader: Reader
    start: int = 0  # the feed's cursor when it joined: every later notice is offered to it
    backlog: int = 1000
    rows: deque[dict[str, Any]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    behind: bool = False  # more came than it holds: catch up from the database

    def offer(self, row: dict[str, Any]) -> None:
        if self.behind:
            return
        if len(self.rows) >= self.backlog:
            self.rows.clear()
            self.behind = True
        else:
            self.rows.append(row)
        self.wake.set()

    def take(self) -> tuple[list[dict[str, Any]], bool]:
        """The rows waiting and whether the stream must catch up from the database."""
        rows, behind = list(self.rows), self.behind
        self.rows.clear()
        self.behind = False
        self.wake.clear()
        return rows, behind


class NotificationFeed:
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 5.0,
        listen: bool = True,
        batch: int = 500,
        backlog: int = 1000,
    ) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.listen = listen
        self.batch = batch
        self.backlog = backlog
        self.last = 0
        self.subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # queries made (the measurements in the module's docstring)

    # --- streams ------------------------------------------------------------------------------

    def subscribe(self, reader: Reader) -> Subscription:
        """Before a stream reads its backlog: whatever the feed reads after ``sub.start`` reaches
        it. A stream that starts from now starts there, not from a later read of the database:
        a notice that commits between the two would be neither offered nor caught up."""
        sub = Subscription(reader, start=self.last, backlog=self.backlog)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    # --- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        async with self.db.engine.connect() as conn:
            self.last = int((await conn.execute(_LAST)).scalar_one())
        self._task = asyncio.create_task(self._run(), name="notification-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_listener()

    async def _listening(self) -> None:
        if not self.listen:
            return
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = None
        try:
            self._listener = await connect(self.db.url, timeout=5)
            await self._listener.add_listener(CHANNEL, self._notified)
            self._wake.set()  # read once now: a notice may have come while it was down
        except Exception as exc:  # noqa: BLE001 - the poll still delivers, later
            log.warning("notification_listen_unavailable", error=str(exc))
            await self._close_listener()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        """A notice committed; its NOTIFY names its seq. With no stream open there is nobody
        to hand it to: the cursor moves there without reading (notices commit in seq order,
        so every one before it has committed too, and a stream opened later starts from the
        cursor and catches up from the database). Otherwise the feed reads."""
        if not self.subscriptions and payload.isdigit():
            self.last = max(self.last, int(payload))
            return
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None

    async def _run(self) -> None:
        failing = False
        while True:
            await self._listening()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()
            try:
                await self.read_new()
                if failing:
                    failing = False
                    log.info("notification_feed_reading_again")
            except Exception as exc:  # noqa: BLE001 - the next wake or poll tries again
                if not failing:
                    failing = True
                    log.warning("notification_feed_read_failed", error=str(exc))
                await asyncio.sleep(min(self.poll_seconds, 1.0))

    async def read_new(self) -> int:
        """Read what committed after ``last`` and hand it to the streams; returns the rows."""
        read = 0
        while True:
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(_NEW, {"last": self.last, "n": self.batch})).mappings().all()
            self.reads += 1
            for row in rows:
                doc = dict(row)
                to = Recipient(user_id=doc["user_id"], org_id=doc["org_id"], role=doc["role"])
                for sub in list(self.subscriptions):
                    if sees(sub.reader, to):
                        sub.offer(doc)
                self.last = max(self.last, int(doc["seq"]))
            read += len(rows)
            if len(rows) < self.batch:
                return read
