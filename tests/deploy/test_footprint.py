"""The requests and limits of every process are the ones a load test recommended: the table of
bench/README.md, "Footprint" (bench/footprint.py's figures), is what deploy/k8s's
Deployments and docker-compose.yml's deploy.resources say, process by process."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .k8s_render import K8S, render

# | process | idle RSS | steady RSS | peak RSS | p95 CPU | requests cpu / memory | limits cpu / memory |
ROW = re.compile(r"^\| `(\w+)` \|.*\| (\d+)m / (\d+)Mi \| (\d+)m / (\d+)Mi \|$", re.MULTILINE)


@pytest.fixture(scope="module")
def sized(root: Path) -> dict[str, dict[str, dict[str, int]]]:
    """process -> {"requests"|"limits": {"cpu": millicores, "memory": MiB}}, from the table."""
    readme = (root / "bench/README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Footprint", 1)[1].split("\n## ", 1)[0]
    rows = {
        m.group(1): {
            "requests": {"cpu": int(m.group(2)), "memory": int(m.group(3))},
            "limits": {"cpu": int(m.group(4)), "memory": int(m.group(5))},
        }
        for m in ROW.finditer(section)
    }
    assert rows, "bench/README.md, Footprint: no table of requests and limits"
    return rows


def test_every_process_of_the_suite_was_sized(
    sized: dict[str, Any], services_in_workspace: list[str], portal: str
) -> None:
    assert sized.keys() == {*services_in_workspace, "gateway", portal}
    for name, row in sized.items():
        assert row["requests"]["cpu"] <= row["limits"]["cpu"], name
        assert row["requests"]["memory"] <= row["limits"]["memory"], name


def test_the_deployments_request_and_limit_what_the_load_test_says(root: Path, sized: dict[str, Any]) -> None:
    deployments = {o["metadata"]["name"]: o for o in render(root / K8S) if o["kind"] == "Deployment"}
    for name, row in sized.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["resources"] == {
            kind: {"cpu": f"{v['cpu']}m", "memory": f"{v['memory']}Mi"} for kind, v in row.items()
        }, f"deploy/k8s/{name}.yaml: not bench/README.md's Footprint row"


def test_compose_limits_and_reserves_what_the_load_test_says(
    app_services: dict[str, dict[str, Any]], sized: dict[str, Any]
) -> None:
    """The memory limits and the reservations of the table; the CPU limit one core at least:
    compose runs one replica of each where the cluster runs two to four."""
    for name, service in app_services.items():
        resources = service["deploy"]["resources"]
        row = sized[name]
        where = f"docker-compose.yml {name}: deploy.resources"
        assert resources["reservations"] == {
            "cpus": f"{row['requests']['cpu'] / 1000:g}",
            "memory": f"{row['requests']['memory']}M",
        }, where
        assert resources["limits"]["memory"] == f"{row['limits']['memory']}M", where
        assert float(resources["limits"]["cpus"]) >= max(1.0, row["limits"]["cpu"] / 1000), where
