"""The restore drill (deploy/README.md, "Backups and restore"): the platform populated with the
manual's journeys, backed up by ``deploy/backup/backup.sh`` (``pg_dump -Fc`` of every database
and a tar of identity's files), everything dropped, restored by ``deploy/backup/restore.sh``,
started again, and then ``voucher-invariants`` passes and every journey reads the same through
the public API as before.

pg_dump and pg_restore must be of the server's major version (or newer): the test asks the
server its version and uses ``/usr/lib/postgresql/<major>/bin`` (``PG_BIN`` overrides it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from common import registry
from common.settings import database_in

from .conftest import Platform
from .journey import Journey, Org, eventually, expect

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.long, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BACKUP_SH = ROOT / "deploy" / "backup" / "backup.sh"
RESTORE_SH = ROOT / "deploy" / "backup" / "restore.sh"
# the gateway's database too: the eight the scripts back up by default
DATABASES = [*registry.NAMES, "gateway"]


@pytest_asyncio.fixture
async def j(platform: Platform) -> AsyncIterator[Journey]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield await Journey.start(platform, client)


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_bin(server_url: str) -> Path:
    """pg_dump and pg_restore of the server's own major version."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    conn = await asyncpg.connect(asyncpg_url(server_url))
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    folder = Path(f"/usr/lib/postgresql/{major}/bin")
    assert (folder / "pg_dump").exists(), f"no pg_dump {major} in {folder}: set PG_BIN"
    return folder


def script_env(platform: Platform, target: Path, bin_dir: Path) -> dict[str, str]:
    """What the backup service is given in production, pointed at the platform: each database's
    URL (the services' own variables), identity's files, the target."""
    env = platform.processes.env
    return {
        "PATH": os.environ["PATH"],
        "PG_BIN": str(bin_dir),
        "BACKUP_TARGET": str(target),
        "BACKUP_DATABASES": " ".join(DATABASES),
        "IDENTITY_STORAGE_URL": env["IDENTITY_STORAGE_URL"],
        "TMPDIR": str(target.parent),
        **{f"{name.upper()}_DATABASE_URL": env[f"{name.upper()}_DATABASE_URL"] for name in DATABASES},
    }


def run(script: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["sh", str(script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{script.name} exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stderr


async def outboxes_drained(platform: Platform) -> dict[str, int]:
    """Unsent outbox rows of each service's database (0 everywhere: every event is out)."""
    pending = {}
    for svc in registry.SERVICES:
        conn = await asyncpg.connect(asyncpg_url(platform.processes.env[f"{svc.env_prefix}DATABASE_URL"]))
        try:
            pending[svc.name] = int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        finally:
            await conn.close()
    return pending


async def drop_databases(platform: Platform, server: str) -> None:
    conn = await asyncpg.connect(database_in(asyncpg_url(server), "postgres"))
    try:
        for name in DATABASES:
            db = platform.processes.env[f"{name.upper()}_DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
            await conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            assert not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db)
    finally:
        await conn.close()


def stop_services(platform: Platform) -> None:
    """Every process stopped as a deploy would (SIGTERM, their drain)."""
    procs = platform.processes.procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        proc.wait(timeout=60)


def start_services(platform: Platform) -> None:
    """Each again as it was first started (same port and settings), the gateway last."""
    processes = platform.processes
    for svc in registry.SERVICES:
        factory, port = processes.specs[svc.name]
        processes.launch(svc.name, factory, port, append=True)
    for svc in registry.SERVICES:
        processes.ready(svc.name, timeout=240)
    processes.restart("gateway", timeout=240)


async def read_journeys(j: Journey, journeys: list[dict[str, Any]]) -> dict[str, Any]:
    """What each journey shows through the public API, as its parties read it."""
    shown: dict[str, Any] = {}
    for journey in journeys:
        enterprise: Org = journey["enterprise"]
        provider: Org = journey["provider"]
        oid = journey["order_id"]
        page: dict[str, Any] = {
            "order": expect(await j.get(f"/orders/{oid}", enterprise)),
            "order, as the provider": expect(await j.get(f"/orders/{oid}", provider)),
            "payment plan": expect(await j.get(f"/orders/{oid}/payment", enterprise)),
            "contract": expect(await j.get(f"/orders/{oid}/contract", enterprise)),
            "voucher": await j.general_voucher(enterprise),
            "settlements": [
                i for i in expect(await j.get("/me/settlements", provider))["items"] if i["order_id"] == oid
            ],
            "refunds": [
                i for i in expect(await j.get("/admin/refunds", j.finance))["items"] if i["order_id"] == oid
            ],
        }
        # identity's files: the bytes behind each file of the journey, as a digest
        files = {}
        for file_id in journey["files"]:
            r = await j.get(f"/files/{file_id}", provider)
            assert r.status_code == 200, f"file {file_id}: {r.status_code} {r.text}"
            files[file_id] = hashlib.sha256(r.content).hexdigest()
        page["files"] = files
        shown[journey["name"]] = page
    return shown


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            out += differences(before.get(key, "<missing>"), after.get(key, "<missing>"), f"{path}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


async def test_every_database_and_the_files_restored_from_the_backup_read_as_before(
    j: Journey, platform: Platform, postgres_server: str, tmp_path: Path
) -> None:
    # --- the manual's journeys ---------------------------------------------------------------
    journeys: list[dict[str, Any]] = []

    enterprise, provider, detail, settlement = await j.settled_order()
    settled_files = [f for key, ids in settlement.items() if key.endswith("_file_ids") for f in ids]
    assert settled_files, settlement
    journeys.append(
        {
            "name": "settled",
            "enterprise": enterprise,
            "provider": provider,
            "order_id": detail["id"],
            "files": settled_files,
        }
    )

    # in progress: signed, the first installment of the deposit confirmed
    enterprise, provider, order, _contract = await j.signed_order(total_fen=7600, deposit_fen=1000)
    await j.status(enterprise, order["id"], "awaiting_deposit")
    await j.paid(enterprise, provider, order["id"], 600)
    await j.order_in(enterprise, order["id"], lambda o: o["paid_fen"] == 600, "the first installment")
    journeys.append(
        {
            "name": "in progress",
            "enterprise": enterprise,
            "provider": provider,
            "order_id": order["id"],
            "files": [],
        }
    )

    # cancelled by the enterprise after signing, nothing paid: the contract terminated, the
    # deduction given back
    enterprise, provider, order, _contract = await j.signed_order(total_fen=7600, deposit_fen=1000)
    await j.status(enterprise, order["id"], "awaiting_deposit")
    expect(await j.post(f"/orders/{order['id']}/cancel", enterprise, {"reason": "项目取消"}))
    await j.status(enterprise, order["id"], "terminated")
    await j.contract(enterprise, order["id"], lambda c: c["state"] == "terminated")
    await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["used_fen"] == 0, "the deduction reversed"
    )
    journeys.append(
        {
            "name": "cancelled",
            "enterprise": enterprise,
            "provider": provider,
            "order_id": order["id"],
            "files": [],
        }
    )

    # A quiet point: every event out of its outbox, the invariants holding, two reads alike.
    await eventually(lambda: outboxes_drained(platform), lambda p: not any(p.values()), "outboxes drained")
    await j.invariants_hold()
    before = await read_journeys(j, journeys)
    assert differences(before, await read_journeys(j, journeys)) == [], "not at rest before the backup"

    # --- backup, as the backup service runs it (the platform up) --------------------------------
    target = tmp_path / "backups"
    env = script_env(platform, target, await pg_bin(postgres_server))
    log = run(BACKUP_SH, env)
    (stamp,) = [p.name for p in target.iterdir() if not p.name.startswith(".")]
    made = sorted(p.name for p in (target / stamp).iterdir())
    assert made == sorted(["COMPLETE", "SHA256SUMS", "files.tar.gz", *(f"{n}.dump" for n in DATABASES)]), (
        made,
        log,
    )

    # --- the disaster: the services stopped, the databases dropped, the files removed ---------
    stop_services(platform)
    await drop_databases(platform, postgres_server)
    files = Path(platform.processes.env["IDENTITY_STORAGE_URL"])
    assert any(p.is_file() for p in files.rglob("*")), "identity stored no file"
    shutil.rmtree(files)

    # --- restore, start again --------------------------------------------------------------------
    log = run(RESTORE_SH, env)
    assert f"restore {stamp} complete" in log, log
    start_services(platform)

    await j.invariants_hold(within=60)
    # the sessions of before still work (identity's keys are the deployment's, not the
    # database's): the same people read the same journeys
    after = await read_journeys(j, journeys)
    # Nothing is left out of the comparison: no document shown here carries a time relative
    # to now or a per-request value, and the restored rows are the same rows (ids, numbers,
    # the times they were made), so every field of every document must read the same.
    assert differences(before, after) == []
    assert after == before
