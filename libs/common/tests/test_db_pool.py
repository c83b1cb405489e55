"""common.db without pool_pre_ping: a connection the server dropped is replaced, not used."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

import common.db
from common.app import ServiceRuntime
from common.db import Database
from common.errors import install_error_handlers
from common.settings import LEASE_SECONDS, ServiceSettings, to_asyncpg_url, to_plain_url


async def _terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(to_plain_url(url))
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


@pytest.mark.parametrize("idle_ping_seconds", [0.0, 3600.0])
async def test_a_connection_the_server_dropped_is_replaced_at_checkout(
    fresh_db: Callable[[str], Awaitable[str]], monkeypatch: pytest.MonkeyPatch, idle_ping_seconds: float
) -> None:
    """Whether it is pinged (idle long enough) or known closed by asyncpg, the next request
    gets a fresh connection and no error."""
    url = await fresh_db("pool")
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        await _terminate(url, int(pid))
        await asyncio.sleep(0.2)
        monkeypatch.setattr(common.db, "IDLE_PING_SECONDS", idle_ping_seconds)
        async with db.session() as session:
            again = await session.scalar(text("SELECT pg_backend_pid()"))
        assert again != pid
    finally:
        await db.dispose()


async def test_a_busy_connection_is_not_pinged(fresh_db: Callable[[str], Awaitable[str]]) -> None:
    """The hot path pays no BEGIN / ping / ROLLBACK before each checkout (pool_pre_ping)."""
    db = Database(await fresh_db("pool"), pool_size=1)
    try:
        async with db.session() as session:
            assert await session.scalar(text("SELECT 1")) == 1
        assert db.engine.pool._pre_ping is False  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_a_read_session_sees_what_is_committed_and_can_not_write(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """``Database.read_session`` (GET routes): it reads what writers committed, runs each
    statement on its own (no BEGIN … ROLLBACK around the request), and PostgreSQL refuses any
    write or row lock through it, so a route that wrongly writes there fails and changes
    nothing instead of committing half a change."""
    db = Database(await fresh_db("pool"), pool_size=1)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE ledger (id int PRIMARY KEY, fen bigint NOT NULL)"))
            await session.execute(text("INSERT INTO ledger VALUES (1, 3800)"))
        async with db.read_session() as reader:
            assert await reader.scalar(text("SELECT fen FROM ledger WHERE id = 1")) == 3800
            # autocommit: each statement is a transaction of its own (now() moves on)
            first = await reader.scalar(text("SELECT now()"))
            await reader.execute(text("SELECT pg_sleep(0.01)"))
            assert await reader.scalar(text("SELECT now()")) > first
            for write in (
                "UPDATE ledger SET fen = 0 WHERE id = 1",
                "INSERT INTO ledger VALUES (2, 1)",
                "SELECT fen FROM ledger WHERE id = 1 FOR UPDATE",
            ):
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    await reader.execute(text(write))
        async with db.session() as session:
            assert (await session.execute(text("SELECT id, fen FROM ledger"))).all() == [(1, 3800)]
            # an ordinary session still runs in one transaction
            first = await session.scalar(text("SELECT now()"))
            await session.execute(text("SELECT pg_sleep(0.01)"))
            assert await session.scalar(text("SELECT now()")) == first
    finally:
        await db.dispose()


# --- lock and statement time-outs (issue 12, F7) -------------------------------------------------


async def test_a_statement_that_waits_for_a_lock_or_runs_too_long_is_cancelled_and_answered_503(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """Every connection carries the service's ``lock_timeout`` and ``statement_timeout``
    (writers and readers): a request waits neither for a row another transaction holds nor for
    a runaway statement longer than that (and never as long as an Idempotency-Key lease);
    a client gets a retryable 503 problem, not a 500."""
    url = await fresh_db("timeouts")
    db = Database(url, pool_size=2, lock_timeout=0.2, statement_timeout=0.6)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/pay")
    async def pay() -> dict[str, int]:
        async with db.session() as session:
            await session.execute(text("UPDATE ledger SET fen = fen - 100 WHERE id = 1"))
            await session.commit()
        return {"ok": 1}

    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE ledger (id int PRIMARY KEY, fen bigint NOT NULL)"))
            await session.execute(text("INSERT INTO ledger VALUES (1, 3800)"))
        async with db.session() as reader:
            assert await reader.scalar(text("SHOW lock_timeout")) == "200ms"
            assert await reader.scalar(text("SHOW statement_timeout")) == "600ms"
        async with db.read_session() as reader:
            assert await reader.scalar(text("SHOW statement_timeout")) == "600ms"
            with pytest.raises(DBAPIError, match="statement timeout"):
                await reader.execute(text("SELECT pg_sleep(5)"))

        holder = await asyncpg.connect(to_plain_url(url))  # another process holds the row
        try:
            tx = holder.transaction()
            await tx.start()
            await holder.execute("SELECT * FROM ledger WHERE id = 1 FOR UPDATE")
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                r = await client.post("/pay")
            assert loop.time() - started < 3
            assert r.status_code == 503 and r.json()["code"] == "database_busy", r.text
            assert r.headers["retry-after"] == "1"
            await tx.rollback()
        finally:
            await holder.close()
        async with db.session() as session:
            assert await session.scalar(text("SELECT fen FROM ledger WHERE id = 1")) == 3800  # unchanged
    finally:
        await db.dispose()


async def test_the_database_time_outs_stay_well_under_the_idempotency_lease() -> None:
    settings = ServiceSettings(environment="development", bus_transport="inprocess")
    assert (settings.db_lock_timeout, settings.db_statement_timeout, LEASE_SECONDS) == (10.0, 30.0, 60.0)
    runtime = ServiceRuntime(settings, migrations_dir=None)  # a service's database carries them
    assert runtime.db.server_settings == {"lock_timeout": "10000ms", "statement_timeout": "30000ms"}
    await runtime.db.dispose()
    with pytest.raises(ValueError, match="DB_STATEMENT_TIMEOUT"):
        ServiceSettings(environment="development", db_statement_timeout=45)
    with pytest.raises(ValueError, match="DB_LOCK_TIMEOUT"):
        ServiceSettings(environment="development", db_lock_timeout=20, db_statement_timeout=15)


async def test_every_statement_sent_is_counted_whichever_way_it_goes(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """``voucher_db_statements_total`` (the benchmark's statements per order) counts the
    session's statements, which asyncpg sends as prepared statements, as well as those sent on
    the raw connection, once each, and no BEGIN or COMMIT."""
    url = await fresh_db("counted")
    db = Database(url, pool_size=1)
    counter = common.db.DB_STATEMENTS.labels(make_url(db.url).database)
    try:
        async with db.transaction() as session:  # warm the connection: its setup is not ours
            await session.execute(text("CREATE TABLE t (n int)"))
        before = counter._value.get()
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": 1})
            await session.execute(text("INSERT INTO t VALUES (:n)"), [{"n": 2}, {"n": 3}])
            assert await session.scalar(text("SELECT count(*) FROM t")) == 3
            assert (
                await (await common.db.raw(session)).fetchval("SELECT count(*) FROM t WHERE n > $1", 1) == 2
            )
        assert counter._value.get() - before == 4
    finally:
        await db.dispose()


# --- the database unreachable or out of connections (saga fault test) ----------------------------


@asynccontextmanager
async def _no_database(
    how: str, url: str
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[AsyncSession]]]:
    """Sessions on a database that cannot give one: nobody listens on its port, the server
    has no room for another connection ("too many clients"), or the pool is exhausted."""
    if how == "refused":
        with socket.socket() as s:  # a port that was free a moment ago: nobody listens on it
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        db = Database(str(make_url(url).set(host="127.0.0.1", port=port)), pool_size=1)
        try:
            yield db.session
        finally:
            await db.dispose()
    elif how == "too_many_clients":
        # A role allowed no connection at all answers as a server at max_connections does
        # (SQLSTATE 53300, asyncpg.TooManyConnectionsError), using none of the shared budget.
        role, password = f"no_room_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        admin = await asyncpg.connect(to_plain_url(url))
        try:
            await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 0")
            db = Database(
                make_url(url).set(username=role, password=password).render_as_string(hide_password=False),
                pool_size=1,
            )
            try:
                yield db.session
            finally:
                await db.dispose()
        finally:
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
            await admin.close()
    else:  # pool_exhausted: its one connection is held by another request
        engine = create_async_engine(to_asyncpg_url(url), pool_size=1, max_overflow=0, pool_timeout=0.2)
        try:
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                yield async_sessionmaker(engine, class_=AsyncSession)
        finally:
            await engine.dispose()


@pytest.mark.parametrize("how", ["refused", "too_many_clients", "pool_exhausted"])
async def test_a_database_that_cannot_give_a_connection_is_answered_503_database_busy(
    fresh_db: Callable[[str], Awaitable[str]], how: str
) -> None:
    """A request whose service cannot reach its database, or finds it (or its own pool) out
    of connections, is answered the retryable 503 ``database_busy`` with Retry-After, never
    a 500: nothing is wrong with the request, and the same request succeeds a moment later."""
    async with _no_database(how, await fresh_db("busy")) as sessions:
        app = FastAPI()
        install_error_handlers(app)

        @app.post("/pay")
        async def pay() -> dict[str, int]:
            async with sessions() as session:
                await session.execute(text("SELECT 1"))
            return {"ok": 1}

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/pay")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    body = r.json()
    assert (body["code"], body["status"], body["detail"]) == ("database_busy", 503, "系统繁忙，请稍后重试")


async def answer_to(failure: Exception) -> httpx.Response:
    """What a route that raises ``failure`` answers, through the common error handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/x")
    async def x() -> None:
        raise failure

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/x")


@pytest.mark.parametrize(
    "failure",
    [
        sa_exc.DBAPIError(
            "SELECT 1", {}, asyncpg.CannotConnectNowError("the database system is starting up")
        ),
        sa_exc.DBAPIError("UPDATE", {}, asyncpg.DeadlockDetectedError("deadlock detected")),
        sa_exc.DBAPIError("UPDATE", {}, asyncpg.SerializationError("could not serialize access")),
    ],
    ids=["starting_up", "deadlock", "serialization"],
)
async def test_the_database_asking_to_try_again_is_answered_503_database_busy(failure: Exception) -> None:
    """A server still starting up, a deadlock victim, a serialization failure: the request
    changed nothing and succeeds when tried again."""
    r = await answer_to(failure)
    assert r.status_code == 503 and r.json()["code"] == "database_busy", r.text
    assert r.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError("smtp down"), FileNotFoundError("/srv/templates/x"), TimeoutError()],
    ids=["smtp_refused", "missing_file", "own_timeout"],
)
async def test_a_failure_that_is_not_the_databases_stays_a_500(failure: Exception) -> None:
    """Only the database's own failures are a retryable 503: a route's other connection
    refused, a missing file or its own time-out are a defect to look at (logged, a 500)."""
    r = await answer_to(failure)
    assert r.status_code == 500 and r.json()["code"] == "internal_error", r.text


# --- the connection budget (issue 17, section 8): every pool's size is a setting --------------


def _pools(db: Database) -> dict[str, tuple[int, int]]:
    """(size, overflow) of the writers' and, once used, the readers' pool."""
    pools = {"writers": db.engine.pool}
    if db._reader is not None:
        pools["readers"] = db._reader.pool
    return {name: (pool.size(), pool._max_overflow) for name, pool in pools.items()}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "writers", "readers", "budget"),
    [
        ({}, (10, 10), (5, 5), 30),  # today's defaults: overflow = size, readers = half
        ({"DB_POOL_SIZE": "6"}, (6, 6), (3, 3), 18),
        ({"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "1", "DB_READ_POOL_SIZE": "3"}, (4, 1), (3, 1), 9),
        ({"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_READ_POOL_SIZE": "1"}, (2, 0), (1, 0), 3),
    ],
)
async def test_a_service_s_pools_take_their_sizes_and_overflow_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    writers: tuple[int, int],
    readers: tuple[int, int],
    budget: int,
) -> None:
    from common.bus.inprocess import InProcessTransport

    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_READ_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ServiceSettings(
        environment="development", database_url="postgresql://postgres@127.0.0.1:1/budget"
    )
    assert settings.db_max_connections == budget  # what one process may open at its peak
    runtime = ServiceRuntime(settings, migrations_dir=None, transport=InProcessTransport())
    try:
        assert _pools(runtime.db) == {"writers": writers}  # the readers' pool: made on first use
        async with runtime.db.read_session():
            pass  # nothing sent: no connection is needed to make the pool
        assert _pools(runtime.db) == {"writers": writers, "readers": readers}
        assert sum(writers) + sum(readers) == budget
    finally:
        await runtime.db.dispose()


def test_pool_settings_out_of_range_are_refused() -> None:
    from pydantic import ValidationError

    for bad in ({"DB_MAX_OVERFLOW": -1}, {"DB_READ_POOL_SIZE": 0}, {"DB_READ_POOL_SIZE": 101}):
        with pytest.raises(ValidationError):
            ServiceSettings(environment="development", **bad)
