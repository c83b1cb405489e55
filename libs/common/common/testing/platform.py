"""The whole platform as separate processes on the real servers, for end-to-end, portal and
browser tests: every service of the registry (each on a fresh database), the gateway, and,
when asked, the portal behind it (the gateway forwards every non-API path to it).

``start_platform`` is used by ``tests/e2e`` (one platform per test) and ``tests/portal`` (one
per module)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import registry
from common.testing.infra import MakeDb
from common.testing.processes import Processes, free_port, running
from common.testing.rabbit import RabbitNamespace

ADMIN_PHONE = "13900000000"
ADMIN_PASSWORD = "Admin-e2e-2024"


@dataclass
class Platform:
    gateway_url: str
    identity_url: str
    rabbit: RabbitNamespace
    processes: Processes
    urls: dict[str, str] = field(default_factory=dict)  # service name (and "gateway") -> base URL


async def platform_env(
    fresh_db: MakeDb,
    rabbit: RabbitNamespace,
    files: Path,
    ports: dict[str, int],
) -> dict[str, str]:
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items() if name != "gateway"}
    env = {
        **os.environ,
        **rabbit.env(),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
        "BUS_RETRY_DELAYS": "[0.1, 0.2, 0.4]",
        # Three platforms of eight processes may run at once beside the other tests: each
        # process keeps few connections, or PostgreSQL's 100 run out (TooManyConnectionsError).
        "DB_POOL_SIZE": "2",
        "OUTBOX_POLL_INTERVAL": "0.2",
        "TIMER_POLL_INTERVAL": "0.2",
        "SERVICE_URLS": json.dumps({n: u for n, u in urls.items() if n in registry.NAMES}),
        "GATEWAY_DATABASE_URL": await fresh_db("e2e_gateway", schema="gateway"),
        "IDENTITY_JWKS_URL": f"{urls['identity']}/.well-known/jwks.json",
        "IDENTITY_STORAGE_URL": str(files),
        "IDENTITY_ADMIN_PHONE": ADMIN_PHONE,
        "IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "IDENTITY_SMS_RESEND_SECONDS": "0",
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8192",
    }
    for svc in registry.SERVICES:
        env[f"{svc.env_prefix}DATABASE_URL"] = await fresh_db(f"e2e_{svc.name}", schema=svc.name)
        env[f"GATEWAY_{svc.name.upper()}_URL"] = urls[svc.name]
    if registry.PORTAL.name in urls:
        # One test stands for many browsers, all from 127.0.0.1: pages and the portal's API
        # calls would share one address's budget (the limits have their own gateway tests).
        env["GATEWAY_RATE_LIMIT_PER_IP"] = "100000"
        env["GATEWAY_WEB_URL"] = urls[registry.PORTAL.name]
        env["WEB_API_URL"] = f"http://127.0.0.1:{ports['gateway']}"
        env["WEB_TRUSTED_PROXY_HOPS"] = "1"
    return env


def start_all(processes: Processes, ports: dict[str, int], timeout: float = 240) -> None:
    """Every registry service at once (each declares the whole topology at start, so none
    misses an event of another that started earlier), each waited for; then the gateway."""
    rows = [*registry.SERVICES, *([registry.PORTAL] if registry.PORTAL.name in ports else [])]
    for svc in rows:
        processes.launch(svc.name, svc.app, ports[svc.name])
    for svc in rows:
        processes.ready(svc.name, timeout=timeout)
    processes.start("gateway", "gateway.main:create_app", ports["gateway"], timeout=timeout)


@asynccontextmanager
async def start_platform(
    fresh_db: MakeDb,
    rabbit: RabbitNamespace,
    folder: Path,
    *,
    portal: bool = False,
    demo: bool = False,
    overrides: Mapping[str, str] | None = None,
) -> AsyncIterator[Platform]:
    """``portal``: the portal too, behind the gateway; ``demo``: every service seeds the demo
    data ``make run`` shows (common.demo's accounts, products, notices); ``overrides``:
    settings of the processes on top (a vendor fake's endpoint, say)."""
    async with platform_slot():
        async with _started(fresh_db, rabbit, folder, portal=portal, demo=demo, overrides=overrides) as p:
            yield p


# PostgreSQL allows 100 connections in all; a platform's nine processes hold up to about forty
# at its busiest, so three at once beside the other tests ran out ("too many clients": two e2e
# journeys and a portal test failed so in one full run). At most two platforms run at once
# across the xdist workers; a third waits for a slot (a lock file held while it runs).
PLATFORM_SLOTS = 2


@asynccontextmanager
async def platform_slot() -> AsyncIterator[None]:
    folder = Path(tempfile.gettempdir()) / f"voucher-platform-slots-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    while True:
        for i in range(PLATFORM_SLOTS):
            handle = (folder / f"slot{i}").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        await asyncio.sleep(0.5)


@asynccontextmanager
async def _started(
    fresh_db: MakeDb,
    rabbit: RabbitNamespace,
    folder: Path,
    *,
    portal: bool,
    demo: bool,
    overrides: Mapping[str, str] | None,
) -> AsyncIterator[Platform]:
    names = [*registry.NAMES, "gateway", *([registry.PORTAL.name] if portal else [])]
    ports: dict[str, int] = {}
    for name in names:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    rabbit.services.extend(registry.NAMES)
    env = await platform_env(fresh_db, rabbit, folder / "files", ports)
    if demo:
        env.update({f"{svc.env_prefix}SEED_DEMO": "true" for svc in registry.SERVICES})
    with running({**env, **(overrides or {})}, folder / "logs") as processes:
        start_all(processes, ports)
        yield Platform(
            processes.urls["gateway"], processes.urls["identity"], rabbit, processes, dict(processes.urls)
        )
