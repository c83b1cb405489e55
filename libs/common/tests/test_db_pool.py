"""common.db without pool_pre_ping: a connection the server dropped is replaced, not used."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import common.db
from common.db import Database
from common.settings import to_plain_url


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
