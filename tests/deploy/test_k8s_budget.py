"""The connection budget (issue 17, §8): every pod the manifests can run at once, times the
connections each keeps to PostgreSQL at its peak, plus the migration Jobs, stays within the
server's max_connections less what is kept for operations, both declared once in
deploy/k8s/postgres-budget.yaml; deploy/README.md's table says the same figures."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common import registry
from common.db import Database
from common.settings import ServiceSettings
from gateway.config import Settings as GatewaySettings

from .k8s_render import K8S, render

ROOT = Path(__file__).resolve().parents[2]
# common.db.migrate: the connection holding the advisory lock and alembic's own.
JOB_CONNECTIONS = 2


@pytest.fixture(scope="module")
def rendered(root: Path) -> list[dict[str, Any]]:
    return render(root / K8S) + render(root / K8S / "migrations")


def kind(objects: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == name}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def peak_pods(objects: list[dict[str, Any]], name: str) -> int:
    """The most pods of a Deployment at once: the autoscaler's maximum (or its replicas),
    plus the one a rolling update adds (maxSurge)."""
    deployment = kind(objects, "Deployment")[name]
    autoscalers = [
        h
        for h in kind(objects, "HorizontalPodAutoscaler").values()
        if h["spec"]["scaleTargetRef"]["name"] == name
    ]
    most = autoscalers[0]["spec"]["maxReplicas"] if autoscalers else deployment["spec"].get("replicas", 1)
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int), f"{name}: maxSurge as a number of pods"
    return int(most) + surge


def pool_peak(pool: Any) -> int:
    return int(pool.size()) + int(pool._max_overflow)


async def service_pod_connections(pool_size: int, listeners: int) -> int:
    """One service process at its peak, measured on common.db.Database itself (no connection
    is opened): the writers' pool and its overflow, the readers' (ReadSessionDep) and its
    overflow, and the LISTEN connections held beside them."""
    db = Database("postgresql://budget@127.0.0.1:9/budget", pool_size=pool_size)
    try:
        async with db.read_session():
            pass  # makes the readers' engine; the session never connects
        return pool_peak(db.engine.pool) + pool_peak(db._reader.pool) + listeners
    finally:
        await db.dispose()


def gateway_pool_size(env: dict[str, str]) -> int:
    """The gateway's Database: its DB_POOL_SIZE, or the gateway's own default."""
    return int(env.get("DB_POOL_SIZE", GatewaySettings.model_fields["db_pool_size"].default))


@dataclass(frozen=True)
class Row:
    deployment: str
    pods: int
    pool_size: int
    per_pod: int

    @property
    def total(self) -> int:
        return self.pods * self.per_pod


async def budget(objects: list[dict[str, Any]]) -> list[Row]:
    rows = []
    default = ServiceSettings.model_fields["db_pool_size"].default
    for name, deployment in kind(objects, "Deployment").items():
        env = env_of(deployment)
        if name in (registry.PORTAL.name, "pushgateway"):
            continue  # no database
        # voucher-invariants' CronJob (a connection per database it reads, for a minute an
        # hour) is one of the operations reserved_connections keeps room for.
        if name == "gateway":
            size = gateway_pool_size(env)
            db = Database("postgresql://budget@127.0.0.1:9/budget", pool_size=size)
            per_pod = pool_peak(db.engine.pool)  # no readers, no relay
            await db.dispose()
        else:
            size = int(env.get("DB_POOL_SIZE", default))
            # The outbox relay's LISTEN; demands' live notifications keep one more.
            listeners = 1 + (name == "demands" and env.get("DEMANDS_NOTIFICATIONS_LISTEN", "true") != "false")
            per_pod = await service_pod_connections(size, listeners)
        rows.append(Row(name, peak_pods(objects, name), size, per_pod))
    return rows


def limits(objects: list[dict[str, Any]]) -> tuple[int, int]:
    data = kind(objects, "ConfigMap")["postgres-budget"]["data"]
    return int(data["max_connections"]), int(data["reserved_connections"])


async def check_budget(objects: list[dict[str, Any]]) -> int:
    pods = sum(row.total for row in await budget(objects))
    jobs = JOB_CONNECTIONS * len(kind(objects, "Job"))
    most, reserved = limits(objects)
    assert pods + jobs <= most - reserved, (
        f"{pods} connections of the pods + {jobs} of the migration Jobs > max_connections {most} - {reserved} "
        "kept for operations: lower DB_POOL_SIZE or maxReplicas, raise max_connections, or put PgBouncer "
        "in front (deploy/README.md, 'Connection budget')"
    )
    return pods + jobs


async def test_every_pod_at_its_peak_and_the_migration_jobs_fit_the_servers_connections(
    rendered: list[dict[str, Any]],
) -> None:
    used = await check_budget(rendered)
    assert used > 0
    assert {row.deployment for row in await budget(rendered)} == {*registry.NAMES, "gateway"}


@pytest.mark.parametrize("change", ["default pools", "orders scaled to 12", "a smaller server"])
async def test_a_deployment_that_outgrows_the_server_is_caught(
    rendered: list[dict[str, Any]], change: str
) -> None:
    broken = copy.deepcopy(rendered)
    if change == "default pools":  # DB_POOL_SIZE left at the settings' default (10)
        for deployment in kind(broken, "Deployment").values():
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            container["env"] = [e for e in container.get("env", []) if e["name"] != "DB_POOL_SIZE"]
    elif change == "orders scaled to 12":
        kind(broken, "HorizontalPodAutoscaler")["orders"]["spec"]["maxReplicas"] = 12
    else:
        kind(broken, "ConfigMap")["postgres-budget"]["data"]["max_connections"] = "100"
    with pytest.raises(AssertionError, match="max_connections"):
        await check_budget(broken)


async def test_the_readme_table_is_the_budget_of_the_manifests(
    root: Path, rendered: list[dict[str, Any]]
) -> None:
    readme = (root / "deploy/README.md").read_text(encoding="utf-8")
    documented = {
        m.group(1): tuple(int(m.group(i)) for i in range(2, 6))
        for m in re.finditer(r"^\| `([a-z]+)` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", readme, re.MULTILINE)
    }
    computed = {r.deployment: (r.pods, r.pool_size, r.per_pod, r.total) for r in await budget(rendered)}
    assert documented == computed, "deploy/README.md, 'Connection budget': the table"
    most, reserved = limits(rendered)
    jobs = JOB_CONNECTIONS * len(kind(rendered, "Job"))
    total = sum(r.total for r in await budget(rendered)) + jobs
    assert f"| total | | | | {total} |" in readme
    assert f"max_connections = {most}" in readme and f"{reserved} kept" in readme
