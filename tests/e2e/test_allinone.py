"""`make run` on a bare machine: one process, an embedded PostgreSQL, the in-process bus and
demo accounts a newcomer can sign in with at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.testing.api_client import ApiDriver
from common.testing.processes import free_port

pytestmark = pytest.mark.e2e


async def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, within: float = 120) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-4000:]
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"not up after {within}s:\n{log.read_text()[-4000:]}")


async def test_allinone_starts_on_an_embedded_database_with_demo_accounts(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("DATABASE_URL") and k not in ("POSTGRES_URL", "AMQP_URL")
    }
    env.update({"ENVIRONMENT": "development", "DATA_DIR": str(tmp_path / "data"), "GATEWAY_PORT": str(port)})
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.launcher", "allinone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait(f"http://127.0.0.1:{port}/api/v1/captcha", proc, log)
        # The banner is printed once uvicorn says it started, up to a moment after the first
        # answer (the launcher polls server.started): wait for it as an operator would.
        deadline = time.monotonic() + 10
        while "Demo accounts" not in log.read_text() and time.monotonic() < deadline:  # noqa: ASYNC110 - a log file offers no event
            await asyncio.sleep(0.1)
        text = log.read_text()
        assert "embedded PostgreSQL running" in text
        assert "phone 13800000001  password Demo-2024" in text
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            api = ApiDriver(client)
            enterprise = await api.login("13800000001", "Demo-2024")
            me = (await client.get("/api/v1/me", headers=enterprise.headers)).json()
            assert me["organization"]["name"] == "广西示范制造有限公司"
            assert me["organization"]["capabilities"] == ["enterprise"]
            provider = await api.login("13800000002", "Demo-2024")
            assert (
                "provider"
                in (await client.get("/api/v1/me", headers=provider.headers)).json()["organization"][
                    "capabilities"
                ]
            )
            admin = await api.login("13800000000", "Admin-2024")
            orgs = await client.get("/api/v1/admin/organizations", headers=admin.headers)
            assert orgs.status_code == 200
            assert {o["name"] for o in orgs.json()["items"]} == {
                "广西示范制造有限公司",
                "广西示范科技服务有限公司",
            }
            stats = (await client.get("/api/v1/portal/stats")).json()
            assert stats["enterprises"] == 2 and stats["providers"] == 1
            assert (await client.get("/docs")).status_code == 200
            assert "/api/v1/auth/login" in (await client.get("/openapi.json")).json()["paths"]
        assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # The embedded server stopped with the platform.
    await asyncio.sleep(1)
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists()
