"""Every service of the registry as its own process, then the gateway, on the real servers.

``platform`` starts each row of ``common.registry`` with uvicorn on a free port and a fresh
database (``e2e_<name>``), ``SERVICE_URLS`` pointing every service at the others and
``GATEWAY_<NAME>_URL`` pointing the gateway at each; ``Platform.urls[name]`` is where each
one listens (the gateway included). A test talks to the gateway (``platform.gateway_url``)
as a client would, and may read ``platform.processes.log_text()`` afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio

from common import registry
from common.processes import uvicorn_command
from common.testing.processes import Processes, free_port, running, wait_ready
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
    fresh_db: Callable[[str], Awaitable[str]],
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
        "SERVICE_URLS": json.dumps(urls),
        "GATEWAY_DATABASE_URL": await fresh_db("e2e_gateway"),
        "IDENTITY_JWKS_URL": f"{urls['identity']}/.well-known/jwks.json",
        "IDENTITY_STORAGE_URL": str(files),
        "IDENTITY_ADMIN_PHONE": ADMIN_PHONE,
        "IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "IDENTITY_SMS_RESEND_SECONDS": "0",
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8192",
    }
    for svc in registry.SERVICES:
        env[f"{svc.env_prefix}DATABASE_URL"] = await fresh_db(f"e2e_{svc.name}")
        env[f"GATEWAY_{svc.name.upper()}_URL"] = urls[svc.name]
    return env


def start_all(processes: Processes, ports: dict[str, int], timeout: float = 120) -> None:
    """Every registry service at once (each declares the whole topology at start, so none
    misses an event of another that started earlier), each waited for; then the gateway."""
    started: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    for svc in registry.SERVICES:
        log = processes.logs / f"{svc.name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                uvicorn_command(svc.app, ports[svc.name]),
                env=processes.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.procs[svc.name] = proc
        started.append((svc.name, log, proc))
    for name, log, proc in started:
        url = f"http://127.0.0.1:{ports[name]}"
        wait_ready(f"{url}/readyz", proc, log, timeout)
        processes.urls[name] = url
    processes.start("gateway", "gateway.main:create_app", ports["gateway"])


@pytest_asyncio.fixture
async def platform(
    fresh_db: Callable[[str], Awaitable[str]], rabbit: RabbitNamespace, tmp_path: Path
) -> AsyncIterator[Platform]:
    ports: dict[str, int] = {}
    for name in (*registry.NAMES, "gateway"):
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    rabbit.services.extend(registry.NAMES)
    env = await platform_env(fresh_db, rabbit, tmp_path / "files", ports)
    with running(env, tmp_path / "logs") as processes:
        start_all(processes, ports)
        yield Platform(
            processes.urls["gateway"], processes.urls["identity"], rabbit, processes, dict(processes.urls)
        )
