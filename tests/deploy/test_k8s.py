"""deploy/k8s: the manifests parse, and every container is probed, bounded and unprivileged,
in the style of GoogleCloudPlatform/microservices-demo's kubernetes-manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = "deploy/k8s"


@pytest.fixture(scope="module")
def manifests(root: Path) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for path in sorted((root / K8S).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{path.name}: {doc}"
        found[path.name] = docs
    return found


@pytest.fixture(scope="module")
def objects(manifests: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [doc for docs in manifests.values() for doc in docs]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_kustomization_lists_every_manifest(root: Path, manifests: dict[str, list[dict[str, Any]]]) -> None:
    kustomization = yaml.safe_load((root / K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests)


def test_identity_and_gateway_are_deployed_with_a_service(
    objects: list[dict[str, Any]], ports: dict[str, int]
) -> None:
    deployments, services = of_kind(objects, "Deployment"), of_kind(objects, "Service")
    assert {"identity", "gateway"} <= deployments.keys()
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port_names == {"http": ports[name]}
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("PORT") == str(ports[name]) and env.get("ENVIRONMENT") == "production"
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
        assert container["image"] == f"voucher-{name}"


def test_every_container_is_probed_bounded_and_unprivileged(objects: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod.get("enableServiceLinks") is False, f"{name}: service links collide with settings prefixes"
        assert pod.get("automountServiceAccountToken") is False
        pod_security = pod.get("securityContext", {})
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser", 0) != 0, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert "ALL" in security.get("capabilities", {}).get("drop", []), where
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz", where
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), where
            assert resources["limits"]["memory"] == "256Mi", where
            assert "cpu" in resources["limits"], where


def test_settings_come_from_the_configmap_and_secrets_from_secret_references(
    objects: list[dict[str, Any]], production_env: dict[str, str]
) -> None:
    assert not of_kind(objects, "Secret"), "no Secret objects (and so no secret values) in the repository"
    (config,) = of_kind(objects, "ConfigMap").values()
    assert config["data"] == production_env, "deploy/k8s/config.yaml and deploy/env/production.env differ"
    for name, deployment in of_kind(objects, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [
            (kind, ref["name"])
            for item in container["envFrom"]
            for kind, ref in item.items()
            if kind.endswith("Ref")
        ]
        assert ("configMapRef", config["metadata"]["name"]) in refs
        assert ("secretRef", "voucher-secrets") in refs
        assert (("secretRef", "voucher-identity-secrets") in refs) == (name == "identity"), name
        for env in container.get("env", []):
            assert "value" in env or "valueFrom" in env
            assert not any(word in env["name"] for word in ("PASS", "SECRET", "KEY", "TOKEN")), env["name"]


def test_identity_files_are_on_a_persistent_volume(objects: list[dict[str, Any]]) -> None:
    pod = of_kind(objects, "Deployment")["identity"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts["/data/files"]]["persistentVolumeClaim"]["claimName"]
    assert claim in of_kind(objects, "PersistentVolumeClaim")
    assert of_kind(objects, "Deployment")["identity"]["spec"]["strategy"]["type"] == "Recreate"
