"""deploy/backup (issue 17, §1): the nightly backup in Kubernetes and compose, and what
backup.sh and restore.sh do beyond the restore drill (tests/e2e/test_restore_drill.py): the
retention rule, and a restore that refuses an unfinished or damaged backup before it changes
anything. The scripts run under dash, a strict POSIX sh, against the real PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from moto.server import ThreadedMotoServer

from common.testing.infra import MakeDb

from .k8s_render import K8S, generated, render

BACKUP = Path(__file__).resolve().parents[2] / "deploy" / "backup"


@pytest.fixture(scope="module")
def rendered(root: Path) -> list[dict[str, Any]]:
    return render(root / K8S)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_the_cronjob_backs_up_every_night_one_at_a_time_without_privileges(
    rendered: list[dict[str, Any]], version: str
) -> None:
    cron = of_kind(rendered, "CronJob")["voucher-backup"]["spec"]
    minute, hour, *every_day = cron["schedule"].split()
    assert every_day == ["*", "*", "*"] and minute.isdigit() and hour.isdigit(), cron["schedule"]
    assert cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = {**pod["securityContext"], **container["securityContext"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["command"] == ["backup.sh"] and container["image"] == f"voucher-backup:{version}"
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    env = {e["name"]: e for e in container["env"]}
    assert env["BACKUP_TARGET"]["value"].startswith("s3://")
    # identity's files are where identity keeps them: the same ConfigMap key
    assert env["IDENTITY_STORAGE_URL"]["valueFrom"]["configMapKeyRef"] == {
        "name": generated(rendered, "ConfigMap", "voucher-config")["metadata"]["name"],
        "key": "IDENTITY_STORAGE_URL",
    }
    assert [list(s) for s in container["envFrom"]] == [["secretRef"]]
    assert container["envFrom"][0]["secretRef"]["name"] == "voucher-backup-secrets"


def test_the_backup_reaches_postgresql_and_the_object_stores_only(rendered: list[dict[str, Any]]) -> None:
    labels = of_kind(rendered, "CronJob")["voucher-backup"]["spec"]["jobTemplate"]["spec"]["template"][
        "metadata"
    ]["labels"]
    policies = [
        p
        for p in of_kind(rendered, "NetworkPolicy").values()
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"] != {}
    ]
    (policy,) = [p for p in policies if "Egress" in p["spec"]["policyTypes"]]
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not policy["spec"].get("ingress"), "nothing connects to the backup"
    # but Prometheus, to every pod of the suite (the backup listens on nothing)
    assert [p["metadata"]["name"] for p in policies if p is not policy] == ["allow-prometheus"]
    reached = []
    for rule in policy["spec"]["egress"]:
        (peer,) = rule["to"]
        (port,) = rule["ports"]
        reached.append((next(iter(peer)), port["port"]))
    assert sorted(reached) == sorted([("podSelector", 5432), ("namespaceSelector", 9000), ("ipBlock", 443)])
    to_postgres = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 5432)
    assert to_postgres["to"][0]["podSelector"] == {"matchLabels": {"app": "postgres"}}
    outside = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 443)["to"][0]["ipBlock"]
    assert outside["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in outside["except"], "not into the cluster"


def test_compose_runs_the_backup_every_night_onto_a_volume(compose: dict[str, Any]) -> None:
    backup = compose["services"]["backup"]
    assert backup["command"] == ["schedule.sh"]
    assert backup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "identity-files:/data/files" in backup["volumes"]
    assert "backups:/backups" in backup["volumes"] and "backups" in compose["volumes"]
    env = backup["environment"]
    assert env["IDENTITY_STORAGE_URL"] == "file:///data/files"
    assert env["BACKUP_TARGET"].startswith("${BACKUP_TARGET:-/backups}")
    assert backup["read_only"] is True and backup["cap_drop"] == ["ALL"]


def test_the_scripts_back_up_the_databases_the_server_is_given(root: Path) -> None:
    init = (root / "deploy/postgres/init/01-databases.sh").read_text()
    lib = (BACKUP / "lib.sh").read_text()
    made = re.search(r'^DATABASES="([^"]*)"', init, flags=re.MULTILINE)
    backed_up = re.search(r'^DEFAULT_DATABASES="([^"]*)"', lib, flags=re.MULTILINE)
    assert made and backed_up and made.group(1).split() == backed_up.group(1).split()
    for script in ("backup.sh", "restore.sh", "schedule.sh", "lib.sh"):
        done = subprocess.run(["dash", "-n", str(BACKUP / script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"


# --- the scripts against PostgreSQL ------------------------------------------------------------


async def pg_bin(url: str) -> str:
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    conn = await asyncpg.connect(url)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    return f"/usr/lib/postgresql/{major}/bin"


async def scripts_env(fresh_db: MakeDb, tmp_path: Path) -> tuple[dict[str, str], str]:
    url = await fresh_db("backup")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
        await conn.execute("INSERT INTO orders VALUES (1, 'completed'), (2, 'awaiting_deposit')")
    finally:
        await conn.close()
    files = tmp_path / "files"
    (files / "files/2026/12").mkdir(parents=True)
    (files / "files/2026/12/receipt").write_bytes(b"%PDF-1.4 receipt")
    env = {
        "PATH": os.environ["PATH"],
        "PG_BIN": await pg_bin(url),
        "BACKUP_TARGET": f"file://{tmp_path / 'backups'}",
        "BACKUP_DATABASES": "orders",
        "ORDERS_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        "IDENTITY_STORAGE_URL": str(files),
        "TMPDIR": str(tmp_path),
        "BACKUP_KEEP_MIN": "2",
        "BACKUP_RETENTION_DAYS": "35",
    }
    return env, url


def run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dash", str(BACKUP / script), *args], env=env, capture_output=True, text=True, timeout=120
    )


async def statuses(url: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch("SELECT id, status FROM orders ORDER BY id")]
    finally:
        await conn.close()


async def test_old_backups_go_but_never_the_newest_complete_ones(fresh_db: MakeDb, tmp_path: Path) -> None:
    env, _url = await scripts_env(fresh_db, tmp_path)
    target = tmp_path / "backups"
    # three complete backups of long ago and one that never finished
    for stamp in ("20200101T023000Z", "20200102T023000Z", "20200103T023000Z"):
        (target / stamp).mkdir(parents=True)
        (target / stamp / "COMPLETE").write_text("2020\n")
    (target / "20200104T023000Z").mkdir()

    done = run("backup.sh", env)
    assert done.returncode == 0, done.stderr
    # the new one and the newest old complete one (BACKUP_KEEP_MIN=2), whatever its age
    kept = sorted(p.name for p in target.iterdir())
    assert len(kept) == 2 and kept[0] == "20200103T023000Z", kept
    assert sorted(p.name for p in (target / kept[1]).iterdir()) == [
        "COMPLETE",
        "SHA256SUMS",
        "files.tar.gz",
        "orders.dump",
    ]


async def test_a_restore_refuses_an_unfinished_or_damaged_backup_and_changes_nothing(
    fresh_db: MakeDb, tmp_path: Path
) -> None:
    env, url = await scripts_env(fresh_db, tmp_path)
    assert run("backup.sh", env).returncode == 0
    target = tmp_path / "backups"
    (stamp,) = [p.name for p in target.iterdir()]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE orders SET status = 'evaluated' WHERE id = 1")
    finally:
        await conn.close()
    after_backup = await statuses(url)

    damaged = target / "20991231T000000Z"
    shutil.copytree(target / stamp, damaged)
    with (damaged / "orders.dump").open("ab") as dump:
        dump.write(b"\0")
    refused = run("restore.sh", env)  # the newest complete one: the damaged copy
    assert refused.returncode != 0 and "checksums differ" in refused.stderr, refused.stderr
    (damaged / "COMPLETE").unlink()
    refused = run("restore.sh", env, damaged.name)
    assert refused.returncode != 0 and "unfinished" in refused.stderr, refused.stderr
    assert await statuses(url) == after_backup
    assert (tmp_path / "files/files/2026/12/receipt").exists()

    # the good one, named: the database and the files as they were backed up
    shutil.rmtree(damaged)
    (tmp_path / "files/files/2026/12/receipt").unlink()
    (tmp_path / "files/stray").write_bytes(b"uploaded after the backup")
    restored = run("restore.sh", env, stamp)
    assert restored.returncode == 0, restored.stderr
    assert await statuses(url) == [(1, "completed"), (2, "awaiting_deposit")]
    assert (tmp_path / "files/files/2026/12/receipt").read_bytes() == b"%PDF-1.4 receipt"
    assert not (tmp_path / "files/stray").exists()


# --- the same with S3-compatible storage (Kubernetes: identity's bucket, an off-site store) ----


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


async def test_a_backup_in_an_s3_store_of_files_in_a_bucket_restores_both(
    fresh_db: MakeDb, tmp_path: Path, s3_endpoint: str
) -> None:
    """The aws CLI (the image's) against a local S3 server: the dumps and the files' bucket
    copied under the backup store's timestamped prefix, and restored from there."""
    assert shutil.which("aws"), "the aws CLI, as in deploy/backup/Dockerfile"
    s3 = s3_client(s3_endpoint)
    tag = uuid.uuid4().hex[:8]
    files, store = f"files-{tag}", f"backups-{tag}"
    s3.create_bucket(Bucket=files)
    s3.create_bucket(Bucket=store)
    s3.put_object(Bucket=files, Key="files/2026/12/receipt", Body=b"%PDF-1.4 receipt")
    env, url = await scripts_env(fresh_db, tmp_path)
    env.update(
        {
            "BACKUP_TARGET": f"s3://{store}/voucher",
            "BACKUP_S3_ENDPOINT": s3_endpoint,
            "IDENTITY_STORAGE_URL": f"s3://{files}?endpoint={s3_endpoint}&region=us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "HOME": str(tmp_path),
        }
    )
    done = run("backup.sh", env)
    assert done.returncode == 0, done.stderr
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=store)["Contents"])
    (stamp,) = {k.split("/")[1] for k in keys}
    assert keys == [
        f"voucher/{stamp}/{name}" for name in ("COMPLETE", "SHA256SUMS", "files.tar.gz", "orders.dump")
    ]

    # lost: an order changed, the file deleted, another one written since
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE orders SET status = 'terminated'")
    finally:
        await conn.close()
    s3.delete_object(Bucket=files, Key="files/2026/12/receipt")
    s3.put_object(Bucket=files, Key="stray", Body=b"after the backup")

    restored = run("restore.sh", env)
    assert restored.returncode == 0, restored.stderr
    assert await statuses(url) == [(1, "completed"), (2, "awaiting_deposit")]
    now = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=files)["Contents"])
    assert now == ["files/2026/12/receipt"]
    assert s3.get_object(Bucket=files, Key=now[0])["Body"].read() == b"%PDF-1.4 receipt"
