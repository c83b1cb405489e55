"""The migration Jobs' command (deploy/k8s/migrations/jobs.yaml: `voucher-<service> migrate
...`, common.migrate_command), run as a Job runs it, with the command and arguments the Job
names: it brings a service's database to head, a migration that meets a lock held by the
running services gives up after its lock_timeout instead of queueing everything behind it,
and a database a newer release already migrated is left as it is."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.script import ScriptDirectory

from common import registry
from common.db import alembic_config, connect
from common.testing.plugin import migrations_of

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "deploy/k8s/migrations/jobs.yaml"
BIN = Path(sys.executable).parent  # the workspace's console scripts, as on the image's PATH


def job_command(service: str) -> list[str]:
    (job,) = [
        doc
        for doc in yaml.safe_load_all(JOBS.read_text())
        if doc and doc["metadata"]["name"] == f"migrate-{service}"
    ]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return [*container["command"], *container.get("args", [])]


def run_job(service: str, server: str, database_url: str, *replace: str) -> subprocess.CompletedProcess[str]:
    """The Job's container: its command, with POSTGRES_URL (from voucher-secrets); here the
    database is a test's own (SERVICE_DATABASE_URL). ``replace``: an option and its value
    put in place of the Job's (``"--lock-timeout", "1s"``)."""
    command = job_command(service)
    for option, value in zip(replace[::2], replace[1::2], strict=True):
        command[command.index(option) + 1] = value
    environment = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "POSTGRES_URL": server,
        f"{service.upper()}_DATABASE_URL": database_url,
    }
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=90)


async def revision(url: str) -> str:
    conn = await connect(url)
    try:
        return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await conn.close()


DATABASES = ("gateway", *registry.NAMES)  # the gateway keeps its rate-limit counters in one


def test_every_job_runs_its_services_migrate_command_with_both_timeouts() -> None:
    for service in DATABASES:
        command = job_command(service)
        assert command[:2] == [f"voucher-{service}", "migrate"]
        assert command[command.index("--lock-timeout") + 1] == "5s"
        assert command[command.index("--statement-timeout") + 1] == "15min"
        # deploy/Dockerfile installs the member voucher-<service> (uv sync --package), its
        # console script among it, on the image's PATH.
        package = ROOT / ("gateway" if service == "gateway" else f"services/{service}")
        scripts = tomllib.loads((package / "pyproject.toml").read_text())["project"]["scripts"]
        assert f"voucher-{service}" in scripts, f"{package}/pyproject.toml: no voucher-{service} script"


@pytest.mark.parametrize("service", DATABASES)
def test_every_services_cli_has_the_migrate_command(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    package = ROOT / ("gateway" if service == "gateway" else f"services/{service}")
    target = tomllib.loads((package / "pyproject.toml").read_text())["project"]["scripts"][
        f"voucher-{service}"
    ]
    module, _, name = target.partition(":")
    main = getattr(importlib.import_module(module), name)
    with pytest.raises(SystemExit) as done:
        main(["migrate", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "--lock-timeout" in shown and "--statement-timeout" in shown


async def test_the_job_brings_a_new_database_to_the_services_head(fresh_db, postgres_server: str) -> None:
    url = await fresh_db("k8sjob")
    done = await asyncio.to_thread(run_job, "gateway", postgres_server, url)
    assert done.returncode == 0, done.stderr[-2000:]
    head = ScriptDirectory.from_config(alembic_config(migrations_of("gateway"), url)).get_current_head()
    assert await revision(url) == head
    assert f"gateway: migrated (empty) -> {head}" in done.stdout
    again = await asyncio.to_thread(run_job, "gateway", postgres_server, url)
    assert again.returncode == 0, "a second run (the next release with no migration) changes nothing"
    assert f"gateway: already at head {head}" in again.stdout


async def test_a_migration_behind_a_held_lock_fails_after_its_lock_timeout(
    fresh_db, postgres_server: str
) -> None:
    """orders one release back (0007), while a running orders holds a lock on the table the
    next migration alters: the Job gives up after its lock timeout, nothing of it applied."""
    url = await fresh_db("k8sjob")
    config = alembic_config(migrations_of("orders"), url)
    await asyncio.to_thread(command.upgrade, config, "0007_contract_copy")
    holder = await connect(url)
    try:
        # What a running request's transaction holds: a row lock, so the ALTER TABLE of
        # 0008_product_copy_provider waits for it.
        async with holder.transaction():
            await holder.execute("LOCK TABLE order_product_copies IN ROW EXCLUSIVE MODE")
            began = time.monotonic()
            done = await asyncio.to_thread(run_job, "orders", postgres_server, url, "--lock-timeout", "1s")
            waited = time.monotonic() - began
    finally:
        await holder.close()
    assert done.returncode == 1
    assert "canceling statement due to lock timeout" in done.stderr, done.stderr[-2000:]
    assert "orders: migration failed, nothing of it applied (lock_timeout 1s" in done.stderr
    assert waited < 60, f"gave up after {waited:.0f} s: the Job's own subprocess timeout is 90"
    assert await revision(url) == "0007_contract_copy"
    done = await asyncio.to_thread(run_job, "orders", postgres_server, url)
    assert done.returncode == 0, "the lock gone, the Job's next try migrates"
    assert await revision(url) == ScriptDirectory.from_config(config).get_current_head()


def test_the_job_refuses_a_timeout_postgresql_would_not_read(postgres_server: str) -> None:
    done = run_job(
        "gateway", postgres_server, postgres_server + "/unused", "--lock-timeout", "5 seconds; DROP"
    )
    assert done.returncode == 2 and "--lock-timeout" in done.stderr
