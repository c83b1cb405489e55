"""deploy/k8s: the manifests parse, and every container is probed, bounded and unprivileged,
in the style of GoogleCloudPlatform/microservices-demo's kubernetes-manifests. The rendered
manifests (kustomize) are valid Kubernetes objects; other checks of what they render:
test_k8s_production.py."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from .k8s_render import K8S, generated, kind_and_name, render, render_in_python


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
def objects(root: Path) -> list[dict[str, Any]]:
    """What kustomize makes of deploy/k8s's own manifests (the generated ConfigMap, the
    images at the release version), without deploy/monitoring's (test_monitoring.py)."""
    monitoring = {kind_and_name(o) for o in render(root / "deploy/monitoring")}
    return [o for o in render(root / K8S) if kind_and_name(o) not in monitoring]


# What voucher-config says otherwise than production.env (docker-compose), and why.
KUBERNETES_ONLY = {
    "IDENTITY_STORAGE_URL": "identity's files in a bucket, so that it runs two replicas and rolls",
    "GATEWAY_TRUSTED_PROXY_HOPS": "the ingress controller is one proxy in front of the gateway",
}


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_kustomization_lists_every_manifest(root: Path, manifests: dict[str, list[dict[str, Any]]]) -> None:
    """Every manifest of deploy/k8s, and deploy/monitoring's workloads (the Pushgateway and
    voucher-invariants' CronJob) through their own kustomization. The migration Jobs are
    applied on their own, first (deploy/k8s/migrations)."""
    kustomization = yaml.safe_load((root / K8S / "kustomization.yaml").read_text())
    files = [r for r in kustomization["resources"] if not r.startswith("../")]
    assert sorted(files) == sorted(manifests)
    assert set(kustomization["resources"]) - set(files) == {"../monitoring"}


def test_identity_and_gateway_are_deployed_with_a_service(
    objects: list[dict[str, Any]], ports: dict[str, int], portal: str, version: str
) -> None:
    deployments, services = of_kind(objects, "Deployment"), of_kind(objects, "Service")
    assert {"identity", "gateway", portal} <= deployments.keys()
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
        assert container["image"] == f"voucher-{name}:{version}"


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
            # the figures: bench/README.md's Footprint table (test_footprint.py)
            assert {"cpu", "memory"} <= resources["limits"].keys(), where


def check_env_sources(objects: list[dict[str, Any]], own_secrets: dict[str, Any], portal: str) -> None:
    config = generated(objects, "ConfigMap", "voucher-config")
    for name, deployment in of_kind(objects, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [
            (kind, ref["name"])
            for item in container["envFrom"]
            for kind, ref in item.items()
            if kind.endswith("Ref")
        ]
        assert ("configMapRef", config["metadata"]["name"]) in refs
        if name == portal:
            # No database, broker or service token: the portal's own Secret alone.
            assert ("secretRef", "voucher-secrets") not in refs, f"{name} holds none of the shared secrets"
        else:
            assert ("secretRef", "voucher-secrets") in refs, name
        for owner in own_secrets.values():
            if name == owner.service:
                assert ("secretRef", owner.k8s_secret) in refs, (
                    f"{name} refuses to start in production without {sorted(owner.required)}: "
                    f"add `secretRef: {{name: {owner.k8s_secret}}}` to its envFrom"
                )
            else:
                assert ("secretRef", owner.k8s_secret) not in refs, (
                    f"{name}: {owner.service}'s private keys go to {owner.service} alone"
                )
        for env in container.get("env", []):
            assert "value" in env or "valueFrom" in env
            assert not any(word in env["name"] for word in ("PASS", "SECRET", "KEY", "TOKEN")), env["name"]


def test_settings_come_from_the_configmap_and_secrets_from_secret_references(
    objects: list[dict[str, Any]], production_env: dict[str, str], own_secrets: dict[str, Any], portal: str
) -> None:
    assert not of_kind(objects, "Secret"), "no Secret objects (and so no secret values) in the repository"
    data = generated(objects, "ConfigMap", "voucher-config")["data"]
    differ = {k for k in production_env.keys() & data.keys() if production_env[k] != data[k]}
    assert differ <= KUBERNETES_ONLY.keys(), (
        f"deploy/k8s/config.env and production.env differ on {sorted(differ)}"
    )
    assert production_env.keys() <= data.keys(), "deploy/k8s/config.env lacks settings of production.env"
    assert data.keys() - production_env.keys() <= KUBERNETES_ONLY.keys(), (
        "config.env: a key production.env lacks"
    )
    for key, why in KUBERNETES_ONLY.items():
        assert key in data, f"deploy/k8s/config.env: {key} ({why})"
    check_env_sources(objects, own_secrets, portal)


@pytest.mark.parametrize(
    ("deployment", "secret"),
    [
        ("contracts", None),  # contracts without its own Secret
        ("identity", None),
        ("web", None),
        ("gateway", "voucher-contracts-secrets"),  # another service's Secret
        ("contracts", "voucher-identity-secrets"),
        ("gateway", "voucher-web-secrets"),
        ("web", "voucher-secrets"),  # the shared secrets, which the portal has no use for
    ],
)
def test_a_deployment_without_its_secret_or_with_anothers_is_caught(
    objects: list[dict[str, Any]],
    own_secrets: dict[str, Any],
    portal: str,
    deployment: str,
    secret: str | None,
) -> None:
    """The check above is not vacuous."""
    broken = copy.deepcopy(objects)
    (container,) = of_kind(broken, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
    if secret is None:
        own = own_secrets[deployment].k8s_secret
        container["envFrom"] = [i for i in container["envFrom"] if i.get("secretRef", {}).get("name") != own]
    else:
        container["envFrom"].append({"secretRef": {"name": secret}})
    with pytest.raises(AssertionError):
        check_env_sources(broken, own_secrets, portal)


def documented_secrets_of(readme: str) -> dict[str, dict[str, str]]:
    """Secret name -> {key: "file" or "literal"} of each `kubectl create secret generic`
    command (with its `\\` continuation lines) in deploy/README.md."""
    found: dict[str, dict[str, str]] = {}
    for match in re.finditer(r"^kubectl create secret generic (?:[^\n]*\\\n)*[^\n]*$", readme, re.MULTILINE):
        argv = shlex.split(match.group(0).replace("\\\n", " "))
        keys: dict[str, str] = {}
        for arg in argv[4:]:
            option = re.fullmatch(r"--from-(file|literal)=([A-Za-z_][A-Za-z0-9_]*)=.*", arg)
            if option:
                keys[option.group(2)] = option.group(1)
        found[argv[4]] = keys
    return found


def test_the_readme_creates_each_services_own_secret_with_its_keys(
    root: Path, own_secrets: dict[str, Any], documented_secrets: dict[str, dict[str, str]]
) -> None:
    """The Secrets are made by hand (deploy/README.md): the commands there must make each
    service's Secret with every variable of its own, a multi-line PEM from a file (a literal
    would keep `\\n` as two characters)."""
    documented = documented_secrets_of((root / "deploy/README.md").read_text(encoding="utf-8"))
    assert "voucher-secrets" in documented
    made = {k: v for values in documented_secrets.values() for k, v in values.items()}
    for row in own_secrets.values():
        keys = documented.get(row.k8s_secret)
        assert keys is not None, f"deploy/README.md: no `kubectl create secret generic {row.k8s_secret}`"
        assert keys.keys() == row.variables, f"{row.k8s_secret} in deploy/README.md"
        for key in row.variables:
            if "\n" in made.get(key, ""):
                assert keys[key] == "file", f"{row.k8s_secret}: pass {key} (multi-line) with --from-file"


def test_identity_files_are_in_a_bucket_not_on_a_volume_of_one_node(objects: list[dict[str, Any]]) -> None:
    from common.storage import S3Storage, storage_from_url

    identity = of_kind(objects, "Deployment")["identity"]
    url = generated(objects, "ConfigMap", "voucher-config")["data"]["IDENTITY_STORAGE_URL"]
    assert isinstance(storage_from_url(url), S3Storage), url
    pod = identity["spec"]["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
    assert not of_kind(objects, "PersistentVolumeClaim")
    assert identity["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = pod["containers"]
    assert {"secretRef": {"name": "voucher-identity-storage"}} in container["envFrom"], "the bucket's keys"


# --- the rendered manifests ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(root: Path) -> list[dict[str, Any]]:
    """Everything an operator applies: deploy/k8s and its migration Jobs."""
    return render(root / K8S) + render(root / K8S / "migrations")


def test_kubectl_and_the_python_rendering_make_the_same_objects(
    root: Path, rendered: list[dict[str, Any]]
) -> None:
    """Both paths of render() agree (here kubectl's output, or the Python one twice)."""
    python = render_in_python(root / K8S) + render_in_python(root / K8S / "migrations")
    assert sorted(map(kind_and_name, python)) == sorted(map(kind_and_name, rendered))
    by_key = {kind_and_name(o): o for o in rendered}
    for obj in python:
        assert obj.get("spec") == by_key[kind_and_name(obj)].get("spec"), kind_and_name(obj)
        assert obj.get("data") == by_key[kind_and_name(obj)].get("data"), kind_and_name(obj)


KUBERNETES_VERSION = "1.32.0"


# Custom resources of operators the manifests may name (the Prometheus operator's
# ServiceMonitor and PrometheusRule, cert-manager's): their schemas come with the operators,
# not with Kubernetes, so only their group is checked here.
OPERATOR_GROUPS = {"monitoring.coreos.com", "cert-manager.io"}


def schema_errors(obj: dict[str, Any]) -> str | None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{kind_and_name(obj)}: {exc.message} at {'/'.join(map(str, exc.path))}"
    except kubernetes_validate.SchemaNotFoundError:
        if obj["apiVersion"].split("/")[0] in OPERATOR_GROUPS:
            return None
        return f"{kind_and_name(obj)}: no Kubernetes schema for {obj['apiVersion']} (a misspelt apiVersion?)"
    return None


def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    """Offline: kubernetes-validate ships the Kubernetes OpenAPI schemas (strict: a field
    Kubernetes does not know, misspelt or misplaced, fails too)."""
    errors = [e for obj in rendered if (e := schema_errors(obj))]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda o: o["spec"].update(replicas="two"),
        lambda o: o["spec"]["template"]["spec"].update(terminationGracePeriod=60),
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=[0]),
        lambda o: o.update(apiVersion="apps/v2"),
    ],
    ids=["a string for a number", "a misspelt field", "a list for a value", "an unknown apiVersion"],
)
def test_an_invalid_object_is_caught_by_the_schemas(rendered: list[dict[str, Any]], break_it: Any) -> None:
    deployment = copy.deepcopy(next(o for o in rendered if kind_and_name(o) == ("Deployment", "quota")))
    break_it(deployment)
    assert schema_errors(deployment) is not None
