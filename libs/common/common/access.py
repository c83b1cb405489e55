"""Rights taken away: every service refuses the tokens identity ended, within seconds, on every
route (DESIGN.md "Identity, roles and files"; issue 12 §4).

Access tokens live 15 minutes and every service trusts their role, organisation and
capabilities. When identity takes a right away it announces ``identity.user_access_changed``
(:class:`common.events.UserAccessChanged`) in the transaction of the change, and each service
then refuses that user's tokens issued before the change's ``not_before``:

- every token of the user issued before it (``session_ids`` empty: deactivated, role changed,
  agent removed, password reset), or
- only the tokens of the sessions named (``sid``, the refresh-token family: logout, a password
  change ending the user's other sessions, a refresh token used twice), so the user's other
  devices stay signed in.

``iat`` is the moment of issue to the millisecond (identity writes it as a fraction, as RFC
7519 allows), so a token issued right after the change (the refresh after a role change, the
sign-in after a password reset) is never caught by it. Both moments come from identity's
clock (its replicas are NTP-synchronised); identity issues a user's token and takes a right
away from that user under the user's row lock, so a token made with the old rights is always
older than the change.

How it is kept:

- ``access_revocations`` in every service's own database (:func:`create_access_schema`, from
  each service's migrations): one row per user (``session_id = ''``) or per session, the
  latest ``not_before`` of each. Identity writes its rows in the transaction of the change
  (:func:`record`), every other service from the event (:func:`register_access_handlers`). A
  merge keeps the later moment, so events may arrive in any order or twice.
- :class:`AccessRevocations`: each process's copy in memory, loaded before the service serves
  and refreshed every ``REVOCATION_POLL_INTERVAL`` (1 s) from its own database, so every
  replica sees what one replica's consumer applied. A refresh reads the rows written by the
  transactions its previous read could not see (by transaction id, not by time: a
  transaction that commits late is never skipped). The check on a request is two dict
  look-ups inside :meth:`common.auth.TokenVerifier.decode`, so its cache of verified tokens
  never lets a revoked one through.
- Rows and entries go once every token they can refuse has expired (:data:`RETENTION`).

Worst-case delay from identity's commit to a refusal: identity's relay (woken at commit,
``OUTBOX_POLL_INTERVAL`` at worst), the broker, the service's consumer (its backlog; retries
after a failure), then at most one ``REVOCATION_POLL_INTERVAL``: about 1-2 s on a quiet platform.
Identity itself: at most one ``REVOCATION_POLL_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import BigInteger, Column, DateTime, Index, case, func, literal_column, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from common.bus.consumer import Consumer
from common.db import Database
from common.events import Envelope, UserAccessChanged

log = structlog.get_logger(__name__)

# How long a revocation is kept: longer than any access token lives (identity refuses an
# access-token lifetime that is not shorter), so no token it refuses outlives it. A day of
# logouts is a few hundred kB in each process.
RETENTION = timedelta(days=1)
EVERY_SESSION = ""  # session_id of a row that covers every token of the user
# The writing transaction's id, as a number that only grows (xid8, no wrap-around).
_TXID = "pg_current_xact_id()::text::bigint"


class AccessRevocation(SQLModel, table=True):
    """Tokens of ``user_id`` (of one session, or of every one) issued before ``not_before``
    are refused."""

    __tablename__ = "access_revocations"
    __table_args__ = (Index("ix_access_revocations_txid", "txid"),)

    user_id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(default=EVERY_SESSION, primary_key=True, max_length=64)
    change: str = Field(max_length=40)
    not_before: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    txid: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=False, server_default=text(f"({_TXID})"))
    )
    updated_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


def create_access_schema(bind: Connection) -> None:
    AccessRevocation.__table__.create(bind=bind, checkfirst=True)  # type: ignore[attr-defined]


async def record(session: AsyncSession, change: UserAccessChanged) -> None:
    """Keep ``change`` in this database (the caller's transaction): the later ``not_before``
    of a user's (or a session's) rows wins, so a late or repeated event changes nothing."""
    sessions = change.session_ids or [EVERY_SESSION]
    table = AccessRevocation.__table__  # type: ignore[attr-defined]
    stmt = pg_insert(table).values(
        [
            {
                "user_id": change.user_id,
                "session_id": sid,
                "change": change.change,
                "not_before": change.not_before,
            }
            for sid in sorted(set(sessions))
        ]
    )
    newer = stmt.excluded.not_before > table.c.not_before
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "session_id"],
            set_={
                "not_before": func.greatest(table.c.not_before, stmt.excluded.not_before),
                "change": case((newer, stmt.excluded.change), else_=table.c.change),
                "txid": literal_column(_TXID),
                "updated_at": func.now(),
            },
        )
    )


def register_access_handlers(consumer: Consumer) -> None:
    """``identity.user_access_changed`` on ``consumer`` (the registry lists it:
    ``common.registry.ACCESS_FACTS``).

    No ordering guard: :func:`record` keeps the later moment of each row, so the merge is the
    same in any order (a guard would even drop a logout of one session that arrives after a
    newer one of another). The upsert locks the row it changes."""

    @consumer.on(UserAccessChanged.event_type)
    async def access_changed(session: AsyncSession, event: Envelope[Any]) -> None:
        await record(session, event.payload)


# One statement, so the rows and the snapshot horizon are of one snapshot: every transaction
# this read cannot see has an id at or above the horizon, and the next read starts there.
_READ = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon, "
    "r.user_id, r.session_id, r.change, extract(epoch FROM r.not_before)::float8 AS not_before "
    "FROM (SELECT 1) AS one LEFT JOIN access_revocations AS r ON r.txid >= :since"
)
_PRUNE = text("DELETE FROM access_revocations WHERE not_before < now() - make_interval(secs => :keep)")


class AccessRevocations:
    """This process's copy of the revocations in its service's database (see the module)."""

    def __init__(
        self,
        db: Database | None = None,
        *,
        interval: float = 1.0,
        retention: timedelta = RETENTION,
        prune_every: float = 600.0,
    ) -> None:
        self.db = db
        self.interval = interval
        self.retention = retention.total_seconds()
        self.prune_every = prune_every
        # user id (or session id) -> (not_before in epoch seconds, what changed)
        self._users: dict[str, tuple[float, str]] = {}
        self._sessions: dict[str, tuple[float, str]] = {}
        self._horizon = 0  # transactions from this id on may not have been seen yet
        self.refreshed_at: float | None = None  # time.monotonic() of the last complete read
        self._pruned_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # --- the check (every request) ----------------------------------------------------------

    def refused(self, claims: Mapping[str, Any]) -> str | None:
        """What ended the token of these claims (``deactivated``, ``role_changed``,
        ``agent_removed``, ``sessions_revoked``...), or None: it was issued after any
        revocation of its user or session."""
        if not self._users and not self._sessions:
            return None
        try:
            issued = float(claims.get("iat") or 0)
        except (TypeError, ValueError):
            issued = 0.0
        user = self._users.get(str(claims.get("sub")))
        if user is not None and issued < user[0]:
            return user[1]
        sid = claims.get("sid")
        if sid:
            own = self._sessions.get(str(sid))
            if own is not None and issued < own[0]:
                return own[1]
        return None

    def apply(
        self, user_id: str, session_id: str, not_before: float, change: str = "sessions_revoked"
    ) -> None:
        into, key = (self._sessions, session_id) if session_id else (self._users, user_id)
        if not_before > into.get(key, (float("-inf"), ""))[0]:
            into[key] = (not_before, change)

    def __len__(self) -> int:
        return len(self._users) + len(self._sessions)

    # --- keeping the copy fresh ---------------------------------------------------------------

    async def refresh(self) -> int:
        """Read what changed since the last read; returns the rows read."""
        assert self.db is not None, "a copy without a database is filled with apply()"
        # The writers' pool: a connection it already holds, not a pool of its own (the read
        # pool is made on first use, and most services never read through it).
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(_READ, {"since": self._horizon})).all()
        read = 0
        for row in rows:
            if row.user_id is not None:
                self.apply(row.user_id, row.session_id, float(row.not_before), row.change)
                read += 1
        if rows:
            self._horizon = max(self._horizon, int(rows[0].horizon))
        self._forget_expired()
        self.refreshed_at = time.monotonic()
        return read

    async def load(self) -> None:
        """The first read, before the service serves: a missing table is a missing migration."""
        try:
            await self.refresh()
        except ProgrammingError as exc:
            if "access_revocations" in str(exc):
                raise RuntimeError(
                    "no access_revocations table: the service's migrations must call "
                    "common.access.create_access_schema (CONTRIBUTING.md)"
                ) from exc
            raise

    def _forget_expired(self) -> None:
        cutoff = time.time() - self.retention
        for entries in (self._users, self._sessions):
            for key in [k for k, (nb, _change) in entries.items() if nb < cutoff]:
                del entries[key]

    async def prune(self) -> int:
        """Delete the rows no live token can be refused by (every replica may: it is idempotent)."""
        assert self.db is not None
        async with self.db.transaction() as session:
            result = await session.execute(_PRUNE, {"keep": self.retention})
        return int(getattr(result, "rowcount", 0) or 0)

    def start(self) -> None:
        if self._task is None and self.db is not None:
            self._task = asyncio.create_task(self._run(), name="access-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
                if time.monotonic() - self._pruned_at >= self.prune_every:
                    self._pruned_at = time.monotonic()
                    await self.prune()
                if self._failing:
                    self._failing = False
                    log.info("access_revocations_refreshed_again")
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                if not self._failing:  # once per outage, not once a second
                    self._failing = True
                    log.warning("access_revocations_refresh_failed", error=str(exc))
