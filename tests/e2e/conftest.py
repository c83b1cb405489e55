"""Every service as its own process, through the gateway, on the real servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

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


async def platform_env(
    fresh_db: Callable[[str], Awaitable[str]], rabbit: RabbitNamespace, files: Path, identity_port: int
) -> dict[str, str]:
    return {
        **os.environ,
        **rabbit.env(),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
        "BUS_RETRY_DELAYS": "[0.1, 0.2, 0.4]",
        "IDENTITY_DATABASE_URL": await fresh_db("e2e_identity"),
        "GATEWAY_DATABASE_URL": await fresh_db("e2e_gateway"),
        "IDENTITY_JWKS_URL": f"http://127.0.0.1:{identity_port}/.well-known/jwks.json",
        "IDENTITY_STORAGE_URL": str(files),
        "IDENTITY_ADMIN_PHONE": ADMIN_PHONE,
        "IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "IDENTITY_SMS_RESEND_SECONDS": "0",
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8192",
        "GATEWAY_IDENTITY_URL": f"http://127.0.0.1:{identity_port}",
    }


@pytest_asyncio.fixture
async def platform(
    fresh_db: Callable[[str], Awaitable[str]], rabbit: RabbitNamespace, tmp_path: Path
) -> AsyncIterator[Platform]:
    identity_port, gateway_port = free_port(), free_port()
    rabbit.services.append("identity")
    env = await platform_env(fresh_db, rabbit, tmp_path / "files", identity_port)
    with running(env, tmp_path / "logs") as processes:
        identity = processes.start("identity", "identity.main:create_app", identity_port)
        gateway = processes.start("gateway", "gateway.main:create_app", gateway_port)
        yield Platform(gateway, identity, rabbit, processes)
