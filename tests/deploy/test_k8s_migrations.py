"""The migration Job's command (deploy/k8s/migrations/migrate.py), run as the Job runs it:
it brings a service's database to head, and a migration that meets a lock held by the
running services gives up after its lock_timeout instead of queueing everything behind it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from alembic.script import ScriptDirectory

from common.db import alembic_config, connect
from common.testing.plugin import migrations_of

SCRIPT = Path(__file__).resolve().parents[2] / "deploy/k8s/migrations/migrate.py"


def run_job(service: str, server: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The Job's container: `python migrate.py SERVICE` with POSTGRES_URL (from voucher-secrets)
    and the timeouts of jobs.yaml; here the database is a test's own (SERVICE_DATABASE_URL)."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "POSTGRES_URL": server,
        f"{service.upper()}_DATABASE_URL": database_url,
        **env,
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), service], env=environment, capture_output=True, text=True, timeout=90
    )


async def revision(url: str) -> str:
    conn = await connect(url)
    try:
        return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await conn.close()


async def test_the_job_brings_a_new_database_to_the_services_head(fresh_db, postgres_server: str) -> None:
    url = await fresh_db("k8sjob")
    done = await asyncio.to_thread(run_job, "gateway", postgres_server, url)
    assert done.returncode == 0, done.stderr[-2000:]
    head = ScriptDirectory.from_config(alembic_config(migrations_of("gateway"), url)).get_current_head()
    assert await revision(url) == head
    again = await asyncio.to_thread(run_job, "gateway", postgres_server, url)
    assert again.returncode == 0, "a second run (the next release with no migration) changes nothing"


async def test_a_migration_behind_a_held_lock_fails_after_its_lock_timeout(
    fresh_db, postgres_server: str
) -> None:
    url = await fresh_db("k8sjob")
    assert (await asyncio.to_thread(run_job, "gateway", postgres_server, url)).returncode == 0
    holder = await connect(url)
    try:
        # What a long transaction of a running service does to the migration's table.
        async with holder.transaction():
            await holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            done = await asyncio.to_thread(
                run_job, "gateway", postgres_server, url, MIGRATION_LOCK_TIMEOUT="1s"
            )
            waited = time.monotonic() - began
    finally:
        await holder.close()
    assert done.returncode != 0
    assert "lock timeout" in done.stderr, done.stderr[-2000:]
    assert waited < 60, f"gave up after {waited:.0f} s: the Job's own subprocess timeout is 90"


def test_the_job_refuses_a_timeout_postgresql_would_not_read(postgres_server: str) -> None:
    done = run_job(
        "gateway", postgres_server, postgres_server + "/unused", MIGRATION_LOCK_TIMEOUT="5 seconds; DROP"
    )
    assert done.returncode != 0 and "MIGRATION_LOCK_TIMEOUT" in done.stderr
