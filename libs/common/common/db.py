"""Async PostgreSQL access (SQLModel on asyncpg) and migrations per service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import structlog
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from common.metrics import DB_STATEMENTS
from common.settings import DbPools, to_asyncpg_url, to_plain_url

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=SQLModel)


def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout hook (runs in SQLAlchemy's greenlet, so ``ping`` may await)."""
    raw = getattr(dbapi_connection, "_connection", None)
    if raw is not None and raw.is_closed():
        raise DisconnectionError("connection closed")
    since = record.info.get("idle_since")
    if since is not None and time.monotonic() - since > IDLE_PING_SECONDS:
        try:
            dbapi_connection.ping()
        except Exception as exc:  # any failure: a fresh connection instead
            raise DisconnectionError(str(exc)) from exc


async def lock(session: AsyncSession, model: type[M], key: Any, *, nowait: bool = False) -> M | None:
    """The aggregate lock: ``SELECT ... FOR UPDATE`` of the row with primary key ``key``,
    freshly read (never a stale copy from the session), or None.

    Routes, event handlers and timers that change the same aggregate all take it first, so
    their changes are serialised by the database whatever process they run in; whoever
    comes second re-reads the state the first one committed and decides on that.
    """
    pk = list(model.__table__.primary_key.columns)  # type: ignore[attr-defined]
    if len(pk) != 1:
        raise TypeError(f"{model.__name__} has a composite key: lock it with a query")
    stmt = (
        select(model)
        .where(pk[0] == key)
        .with_for_update(nowait=nowait)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(stmt)).first()


class Missing(LookupError):
    """A row the caller knows exists (made earlier in its transaction, or a committed fact it
    stands on) is not there: a defect, never a user's error (the event is retried, then parked)."""


async def lock_existing(session: AsyncSession, model: type[M], key: Any, *, nowait: bool = False) -> M:
    """:func:`lock` for a row that must exist: raises :class:`Missing` instead of returning
    None (an ``assert`` would vanish under ``python -O``)."""
    row = await lock(session, model, key, nowait=nowait)
    if row is None:
        raise Missing(f"{model.__name__} {key!r} is not there to lock")
    return row


async def raw(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of the session's transaction (begun if it has not begun).

    For the platform's own bookkeeping that runs with every event and command (the inbox,
    the ordering guard, the outbox, timers: ``common.bus`` and ``common.timers`` only), in
    the same transaction but without SQLAlchemy's work per statement, which py-spy put at
    about 0.3 ms of Python each, more than PostgreSQL's own time (bench/README.md, issue
    16). Services keep to the session: this is the one place the house steps outside it.
    Statements sent here are not preceded by an autoflush of the session."""
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    driver: asyncpg.Connection = fairy.driver_connection
    if not driver.is_in_transaction() and connection.in_transaction():
        # SQLAlchemy's asyncpg adapter sends its BEGIN lazily, with the first statement it
        # runs: have it begin now, or what is sent here would commit on its own (a failed
        # handler would leave its event marked as applied). Its own method, so the adapter
        # knows the transaction is there (it commits and rolls it back); a statement sent
        # only for that would cost a round trip per event (libs/common/tests/test_ordering.py).
        adapter: Any = fairy.dbapi_connection  # SQLAlchemy's AsyncAdapt_asyncpg_connection
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                await adapter._start_transaction()
    return driver


# A pooled connection idle for longer than this is pinged before it is handed out again.
IDLE_PING_SECONDS = 10.0


class Database:
    """One engine and session factory per service; never created at import time.

    No ``pool_pre_ping``: with asyncpg it costs three round trips (BEGIN, a query, ROLLBACK)
    on every checkout, a third of an authenticated read. Instead a connection is checked
    when that can matter: one asyncpg knows to be closed is replaced at once (free), and one
    that sat idle for ``IDLE_PING_SECONDS`` (the server may have restarted or a firewall cut
    it) is pinged first. A connection that breaks while in use is invalidated by SQLAlchemy
    and the pool makes a new one; ``pool_recycle`` retires old ones, and LIFO keeps the few
    hot connections hot so the others age out.

    ``lock_timeout`` and ``statement_timeout`` (seconds; a service takes them from its
    settings) are set on every connection: a statement that waits for a lock, or runs, longer
    than that fails instead of holding its request (and its ``Idempotency-Key`` claim, whose
    lease is longer) indefinitely.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        read_pool_size: int | None = None,
        echo: bool = False,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        self.url = to_asyncpg_url(url)
        self.pools = DbPools.of(pool_size, max_overflow, read_pool_size)
        self.pool_size = pool_size
        self.echo = echo
        self.server_settings: dict[str, str] = {}
        if lock_timeout:
            self.server_settings["lock_timeout"] = f"{max(1, round(lock_timeout * 1000))}ms"
        if statement_timeout:
            self.server_settings["statement_timeout"] = f"{max(1, round(statement_timeout * 1000))}ms"
        self.engine: AsyncEngine = self._engine()
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._reader: AsyncEngine | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None

    def _engine(
        self,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        server_settings: dict[str, str] | None = None,
        **options: Any,
    ) -> AsyncEngine:
        size = pool_size or self.pools.size
        overflow = self.pools.overflow if max_overflow is None else max_overflow
        settings = {**self.server_settings, **(server_settings or {})}
        if settings:
            options["connect_args"] = {"server_settings": settings}
        engine = create_async_engine(
            self.url,
            pool_size=size,
            max_overflow=overflow,
            pool_pre_ping=False,
            pool_recycle=1800,
            pool_use_lifo=True,
            echo=self.echo,
            **options,
        )
        event.listen(engine.sync_engine, "checkin", _idle_from_now)
        event.listen(engine.sync_engine, "checkout", _check_on_checkout)
        counted = DB_STATEMENTS.labels(make_url(self.url).database or "")

        # Every statement sent, counted once: the session's go out as asyncpg prepared
        # statements, which its query logger does not see, so SQLAlchemy counts those; the
        # logger counts the rest (raw() ones and the session's executemany).
        def count_session(*args: Any) -> None:
            if not args[-1]:  # executemany
                counted.inc()

        def count_driver(record: Any) -> None:
            if not record.query.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                counted.inc()

        event.listen(engine.sync_engine, "before_cursor_execute", count_session)
        event.listen(
            engine.sync_engine,
            "connect",
            lambda adapted, _record: adapted._connection.add_query_logger(count_driver),
        )
        return engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for a request that only reads: no BEGIN and no ROLLBACK round trips
        (autocommit, each statement its own snapshot), on connections PostgreSQL itself keeps
        read-only (``default_transaction_read_only``), so a write or a ``FOR UPDATE`` through
        it fails loudly instead of committing piecemeal. Statements of one read do not share
        a snapshot: a count and its page may differ by a row that arrived in between, which
        a listing may show; a decision never reads through here.

        Its own pool, by default half the size of the writers' (reads are short; the server's
        connection budget is shared by every service; DB_READ_POOL_SIZE), made on first use:
        a service that never reads this way holds no extra connection."""
        if self._read_sessions is None:
            self._reader = self._engine(
                self.pools.read_size,
                self.pools.read_overflow,
                isolation_level="AUTOCOMMIT",
                server_settings={"default_transaction_read_only": "on"},
            )
            self._read_sessions = async_sessionmaker(
                self._reader, class_=AsyncSession, expire_on_commit=False
            )
        async with self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            await self._reader.dispose()


def asyncpg_connect_args(url: str) -> dict[str, object]:
    """Arguments for ``asyncpg.connect`` from a SQLAlchemy URL (unix sockets included)."""
    u = make_url(to_asyncpg_url(url))
    args: dict[str, object] = {"user": u.username or "postgres", "database": u.database or "postgres"}
    if u.password:
        args["password"] = u.password
    host = u.query.get("host") or u.host or "127.0.0.1"
    args["host"] = host if isinstance(host, str) else host[0]
    if u.port:
        args["port"] = u.port
    return args


@retry(
    retry=retry_if_exception_type((OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)),
    wait=wait_exponential(multiplier=0.2, max=3),
    stop=stop_after_delay(60),
    reraise=True,
)
async def connect(url: str, **overrides: object) -> asyncpg.Connection:
    """A raw asyncpg connection, waiting (bounded) for the server to come up."""
    return await asyncpg.connect(**{**asyncpg_connect_args(url), **overrides})


async def ensure_database(url: str) -> None:
    """Create the database a URL names when it does not exist yet."""
    name = make_url(to_asyncpg_url(url)).database
    if not name:
        raise ValueError("the database URL names no database")
    conn = await connect(url, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("database_created", database=name)
            except asyncpg.DuplicateDatabaseError:
                pass  # another process made it in the meantime
    finally:
        await conn.close()


def alembic_config(
    migrations_dir: Path, url: str, *, server_settings: dict[str, str] | None = None
) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", to_asyncpg_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    # Set on every connection alembic opens (common.migrations_env reads them).
    cfg.attributes["server_settings"] = dict(server_settings or {})
    return cfg


# What a migration may wait for a lock and run, at start and in `voucher-<service> migrate`
# (the release's migration Job): one that queues behind a running service's transaction gives
# up after MIGRATION_LOCK_TIMEOUT instead of queueing every request behind its own lock (the
# process, or the Job, then fails and is tried again); none runs longer than 15 minutes.
MIGRATION_LOCK_TIMEOUT = 5.0
MIGRATION_STATEMENT_TIMEOUT = 15 * 60.0

# Serialises every migrator of one database (advisory locks are per database).
MIGRATION_LOCK_KEY = 727001


def postgres_duration(seconds: float) -> str:
    """``seconds`` as a value for lock_timeout / statement_timeout (milliseconds, at least 1)."""
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` found and did: the database's revision ``before`` and ``after``
    (None: no migration had run), this code's ``head``, and ``newer_than_code`` when the
    database is at a revision this code does not know (a newer release migrated it: nothing
    is run, the code starts on it: CONTRIBUTING, the expand/contract rule)."""

    before: str | None
    after: str | None
    head: str | None
    newer_than_code: bool = False


async def _current_revisions(conn: asyncpg.Connection) -> list[str]:
    if await conn.fetchval("SELECT to_regclass('alembic_version') IS NULL"):
        return []
    return [str(r[0]) for r in await conn.fetch("SELECT version_num FROM alembic_version")]


def _unknown(script: ScriptDirectory, revisions: list[str]) -> list[str]:
    unknown = []
    for rev in revisions:
        try:
            if script.get_revision(rev) is None:
                unknown.append(rev)
        except CommandError:  # alembic: "Can't locate revision identified by ..."
            unknown.append(rev)
    return unknown


async def migrate(
    migrations_dir: Path,
    url: str,
    *,
    lock_timeout: float | None = MIGRATION_LOCK_TIMEOUT,
    statement_timeout: float | None = MIGRATION_STATEMENT_TIMEOUT,
) -> Migration:
    """Create the database if needed and apply every migration (alembic ``upgrade head``).

    Alembic's async env runs its own event loop, so it runs in a worker thread. Every
    migrator of a database (replicas starting at once, the release's migration Job) is
    serialised by an advisory lock. ``lock_timeout`` and ``statement_timeout`` (seconds; None:
    the server's) are set on alembic's connections: a migration that meets a lock held by
    the running services fails after ``lock_timeout`` (``asyncpg``'s
    ``LockNotAvailableError`` inside SQLAlchemy's error), changing nothing (one transaction).

    A database at a revision this code does not know was migrated by a newer release
    (``kubectl rollout undo``, a replica of the previous release still rolling): nothing is
    run, a warning says so, and the caller starts on that schema, which the expand/contract
    rule keeps working for the previous release.
    """
    settings: dict[str, str] = {}
    if lock_timeout:
        settings["lock_timeout"] = postgres_duration(lock_timeout)
    if statement_timeout:
        settings["statement_timeout"] = postgres_duration(statement_timeout)
    cfg = alembic_config(migrations_dir, url, server_settings=settings)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    await ensure_database(url)
    conn = await connect(url)
    try:
        # Waits for another migrator of this database as long as it takes; then the same
        # timeouts as alembic's, for reading the revision (a service's transaction may hold
        # alembic_version too).
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        for name, value in settings.items():
            await conn.execute(f"SET {name} = '{value}'")
        before = await _current_revisions(conn)
        if unknown := _unknown(script, before):
            log.warning(
                "schema_newer_than_code",
                database=make_url(to_asyncpg_url(url)).database,
                revision=", ".join(unknown),
                head=head,
                hint="a newer release migrated this database: starting on it unmigrated "
                "(the expand/contract rule keeps it working for this release)",
            )
            first = ", ".join(before)
            return Migration(first, first, head, newer_than_code=True)
        await asyncio.to_thread(command.upgrade, cfg, "head")
        after = await _current_revisions(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.close()
    return Migration(", ".join(before) or None, ", ".join(after) or None, head)


__all__ = [
    "AsyncSession",
    "Database",
    "Migration",
    "connect",
    "ensure_database",
    "lock",
    "migrate",
    "to_plain_url",
]


def escape_like(q: str) -> str:
    """``q`` as a literal inside a LIKE pattern (``like(..., escape="\\\\")``): % and _ match themselves."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
