"""common.db without pool_pre_ping: a connection the server dropped is replaced, not used."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import text

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
