"""The service registry (libs/common/common/registry.py) is the one list of services: compose,
Kubernetes, the env files and the database init script must say the same. Adding a service
is its package plus one registry row; these tests then say what else to write, and where.
(The RabbitMQ definitions are checked against the registry in test_rabbitmq.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import registry

K8S = "deploy/k8s"


def k8s_objects(root: Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((root / K8S).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == kind:
                found[doc["metadata"]["name"]] = doc
    return found


def test_every_registry_service_has_the_documented_port(ports: dict[str, int]) -> None:
    for svc in registry.SERVICES:
        assert ports.get(svc.name) == svc.port, (
            f"{svc.name}: registry port {svc.port}, deploy {ports.get(svc.name)}"
        )


def test_every_registry_service_is_a_workspace_package(services_in_workspace: list[str]) -> None:
    assert sorted(registry.NAMES) == services_in_workspace


def test_compose_runs_exactly_the_registry_services_and_the_gateway(
    app_services: dict[str, dict[str, Any]],
) -> None:
    assert sorted(app_services) == sorted({*registry.NAMES, "gateway"}), (
        "docker-compose.yml: one block per registry row (see the comment of x-app-service)"
    )
    for svc in registry.SERVICES:
        block = app_services[svc.name]
        assert str(block["build"]["args"]["PORT"]) == str(svc.port), svc.name
        assert [str(p) for p in block.get("expose", [])] == [str(svc.port)], svc.name
        assert block["depends_on"]["rabbitmq"], (
            f"{svc.name} declares the topology at start: it needs the broker"
        )
    gateway_waits = app_services["gateway"]["depends_on"]
    for name in registry.NAMES:
        assert gateway_waits.get(name, {}).get("condition") == "service_healthy", f"gateway -> {name}"


def test_kubernetes_deploys_exactly_the_registry_services_and_the_gateway(root: Path) -> None:
    deployments, services = k8s_objects(root, "Deployment"), k8s_objects(root, "Service")
    assert sorted(deployments) == sorted({*registry.NAMES, "gateway"}), (
        f"{K8S}: one <name>.yaml per registry row (copy quota.yaml), listed in kustomization.yaml"
    )
    assert set(deployments) <= set(services), "a Service named after every Deployment"
    for svc in registry.SERVICES:
        (container,) = deployments[svc.name]["spec"]["template"]["spec"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [svc.port], svc.name
        assert [p["port"] for p in services[svc.name]["spec"]["ports"]] == [svc.port], svc.name
        assert container["image"] == f"voucher-{svc.name}"


def test_the_gateway_and_the_services_find_every_registry_service(
    production_env: dict[str, str], root: Path
) -> None:
    expected = {svc.name: f"http://{svc.name}:{svc.port}" for svc in registry.SERVICES}
    assert json.loads(production_env["SERVICE_URLS"]) == expected, "SERVICE_URLS in deploy/env/production.env"
    routed = {k for k in production_env if k.startswith("GATEWAY_") and k.endswith("_URL")}
    assert routed == {f"GATEWAY_{name.upper()}_URL" for name in registry.NAMES}
    for name, url in expected.items():
        assert production_env[f"GATEWAY_{name.upper()}_URL"] == url
    config = k8s_objects(root, "ConfigMap")["voucher-config"]["data"]
    assert json.loads(config["SERVICE_URLS"]) == expected, f"SERVICE_URLS in {K8S}/config.yaml"


def test_every_registry_service_gets_its_database_on_first_start(root: Path) -> None:
    script = (root / "deploy/postgres/init/01-databases.sh").read_text()
    listed = re.search(r'^DATABASES="([^"]*)"', script, flags=re.MULTILINE)
    assert listed
    missing = sorted(set(registry.NAMES) - set(listed.group(1).split()))
    assert not missing, f"add {missing} to DATABASES in deploy/postgres/init/01-databases.sh"


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_a_service_added_to_the_registry_alone_is_caught(
    where: str, app_services: dict[str, dict[str, Any]], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above are not vacuous: a new registry row without its deployment fails."""
    extra = registry.Service(name="billing", port=8009, app="billing.main:create_app")
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, extra))
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "billing"))
    check = (
        test_compose_runs_exactly_the_registry_services_and_the_gateway
        if where == "compose"
        else test_kubernetes_deploys_exactly_the_registry_services_and_the_gateway
    )
    with pytest.raises(AssertionError):
        check(app_services) if where == "compose" else check(root)  # type: ignore[arg-type]
