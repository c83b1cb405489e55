"""common.db without pool_pre_ping: a connection the server dropped is replaced, not used."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

import common.db
from common.app import ServiceRuntime
from common.db import Database
from common.errors import install_error_handlers
from common.settings import LEASE_SECONDS, ServiceSettings, to_plain_url


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
            assert await (await common.db.raw(session)).fetchval("SELECT count(*) FROM t WHERE n > $1", 1) == 2
        assert counter._value.get() - before == 4
    finally:
        await db.dispose()
