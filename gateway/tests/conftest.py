from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from common.auth import KeySet
from common.testing.infra import MakeDb
from common.testing.rabbit import RabbitNamespace
from gateway.config import Settings
from gateway.main import create_app
from gateway.proxy import Upstreams
from identity.config import Settings as IdentitySettings
from identity.main import create_app as create_identity


def gateway_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": database_url,
        "log_json": False,
        "rate_limit_sync_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


async def _far_from_a_window_end(window: int, margin: float = 10.0) -> None:
    """Limits count in fixed windows (a minute): a test that counts up to its limit while the
    window turns starts again from zero and sees no 429. It waits for the next window when the
    current one ends within ``margin`` seconds (CI once straddled 07:18:59.6 -> 07:19:00.0)."""
    left = window - time.time() % window
    if left < margin:
        await asyncio.sleep(left + 0.05)


@asynccontextmanager
async def served(app: ASGIApp, **options: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """``app`` behind a real HTTP server on a free port (lifespan not run): its base URL and the
    server (``server.server_state.tasks``: the requests it is still handling). ``options`` go
    to ``uvicorn.Config`` (``http=`` the protocol the launcher starts the gateway with)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_graceful_shutdown=2, **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event for it
        if task.done():
            task.result()  # it failed to start: say why
            raise RuntimeError("the test server stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def identity_app(fresh_db: MakeDb, rabbit: RabbitNamespace, tmp_path: Path) -> AsyncIterator[FastAPI]:
    bus = {"amqp_url": rabbit.url, "bus_exchange": rabbit.exchange, "bus_queue_prefix": rabbit.prefix}
    settings = IdentitySettings(
        environment="development",
        database_url=await fresh_db("identity", schema="identity"),
        **bus,
        storage_url=str(tmp_path / "files"),
        log_json=False,
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        sms_resend_seconds=0,
    )
    app = create_identity(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def make_gateway(
    fresh_db: MakeDb,
) -> AsyncIterator[Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient]]]]:
    """Start a gateway in front of in-process upstreams; returns (app, client through it)."""
    opened: list[Any] = []
    database = None

    async def make(upstreams: dict[str, ASGIApp], *, shared_db: bool = True, **overrides: Any):  # type: ignore[no-untyped-def]
        nonlocal database
        if database is None or not shared_db:
            database = await fresh_db("gateway", schema="gateway")
        ups = Upstreams.in_process(upstreams)
        keys = (
            KeySet("http://identity/.well-known/jwks.json", client=ups.clients["identity"])
            if "identity" in upstreams
            else KeySet()
        )
        app = create_app(gateway_settings(database, **overrides), upstreams=ups, key_set=keys)
        if any(name.startswith("rate_limit_per") or name.endswith("_per_ip") for name in overrides):
            await _far_from_a_window_end(app.state.limiter.window)
        cm = app.router.lifespan_context(app)
        await cm.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("192.0.2.10", 4000)), base_url="http://gateway"
        )
        opened.append((cm, client))
        return app, client

    yield make
    for cm, client in reversed(opened):
        await client.aclose()
        await cm.__aexit__(None, None, None)
