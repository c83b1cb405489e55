"""Least privilege in Kubernetes as in docker-compose (issue 17, §7): each service connects
as its own database role and broker user, from a Secret of its own
(`voucher-<service>-credentials`, made from deploy/env/<service>.credentials.env as
deploy/README.md says), that no other workload reads; its migration Job migrates as that same
role; voucher-invariants' CronJob reads with a read-only role of its own. And with those
Secrets every process finds each setting it needs."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from common import registry
from invariants.readers import SERVICES as INVARIANTS_READS

from .conftest import OWN_SECRETS, parse_env_file
from .k8s_render import K8S, kind_and_name, render
from .test_k8s import documented_secrets_of
from .test_registry import settings_class, start

MONITORING = "deploy/monitoring"
# Every process with a database of its own (the gateway keeps its rate-limit counters in one).
OWNERS = (*registry.NAMES, "gateway")
INVARIANTS = "voucher-invariants-credentials"
BACKUP = "voucher-backup"
CREDENTIALS = re.compile(r"voucher-[a-z]+-credentials")


def credentials_of(name: str) -> str:
    return f"voucher-{name}-credentials"


@pytest.fixture(scope="module")
def rendered(root: Path) -> list[dict[str, Any]]:
    """Everything an operator applies: deploy/k8s, its migration Jobs and the monitoring
    workloads (once each, whether deploy/k8s lists ../monitoring or not)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for directory in (K8S, f"{K8S}/migrations", MONITORING):
        for obj in render(root / directory):
            seen.setdefault(kind_and_name(obj), obj)
    return list(seen.values())


def pods(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> pod spec of every Deployment, Job and CronJob."""
    found = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            found[kind_and_name(obj)] = obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            found[kind_and_name(obj)] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return found


def secrets_read(pod: dict[str, Any]) -> set[str]:
    """Every Secret a pod reads: whole (envFrom), one key (env valueFrom) or as files."""
    names: set[str] = set()
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        names |= {i["secretRef"]["name"] for i in container.get("envFrom", []) if "secretRef" in i}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def migrated_by(job: dict[str, Any]) -> str:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    program, subcommand = container["command"][:2]  # voucher-<service> migrate ...
    assert subcommand == "migrate", job["metadata"]["name"]
    return str(program).removeprefix("voucher-")


def expected_credentials(objects: list[dict[str, Any]], key: tuple[str, str]) -> set[str]:
    kind_, name = key
    if kind_ == "Deployment":
        return {credentials_of(name)} if name in OWNERS else set()
    if kind_ == "Job":
        job = next(o for o in objects if kind_and_name(o) == key)
        return {credentials_of(migrated_by(job))}
    if key == ("CronJob", BACKUP):
        return set()  # no service's role: the superuser's, from voucher-backup-secrets (below)
    assert key == ("CronJob", "voucher-invariants"), f"{key}: which credentials may it read?"
    return {INVARIANTS}


def check_credentials(objects: list[dict[str, Any]]) -> None:
    workloads = pods(objects)
    for key, pod in workloads.items():
        read = {s for s in secrets_read(pod) if CREDENTIALS.fullmatch(s)}
        expected = expected_credentials(objects, key)
        assert read == expected, f"{key}: reads the credentials {sorted(read)}, expected {sorted(expected)}"
    deployed = {name for kind_, name in workloads if kind_ == "Deployment"}
    assert set(OWNERS) <= deployed, f"no Deployment for {sorted(set(OWNERS) - deployed)}"


def test_each_workload_reads_its_own_credentials_and_no_others(rendered: list[dict[str, Any]]) -> None:
    check_credentials(rendered)


@pytest.mark.parametrize(
    "change",
    [
        "a service without its own",
        "a service with another's",
        "a Job with another service's",
        "the CronJob with a service's",
        "the portal with a service's",
    ],
)
def test_credentials_given_to_the_wrong_workload_are_caught(
    rendered: list[dict[str, Any]], change: str
) -> None:
    broken = copy.deepcopy(rendered)
    workloads = pods(broken)

    def container(key: tuple[str, str]) -> dict[str, Any]:
        (c,) = workloads[key]["containers"]
        return c

    if change == "a service without its own":
        c = container(("Deployment", "orders"))
        c["envFrom"] = [
            i for i in c["envFrom"] if i.get("secretRef", {}).get("name") != credentials_of("orders")
        ]
    elif change == "a service with another's":
        container(("Deployment", "quota"))["envFrom"].append(
            {"secretRef": {"name": credentials_of("payments")}}
        )
    elif change == "a Job with another service's":
        container(("Job", "migrate-catalog"))["envFrom"] = [
            {"secretRef": {"name": credentials_of("identity")}}
        ]
    elif change == "the CronJob with a service's":
        container(("CronJob", "voucher-invariants"))["envFrom"].append(
            {"secretRef": {"name": credentials_of("orders")}}
        )
    else:
        container(("Deployment", registry.PORTAL.name)).setdefault("envFrom", []).append(
            {"secretRef": {"name": credentials_of("gateway")}}
        )
    with pytest.raises(AssertionError):
        check_credentials(broken)


# --- what each Secret holds, and so what each process is given --------------------------------


@pytest.fixture(scope="module")
def made(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """deploy/env/make-credentials.py run into a directory of our own: file name -> values."""
    into = tmp_path_factory.mktemp("k8s-credentials")
    subprocess.run(
        [sys.executable, str(root / "deploy/env/make-credentials.py"), "--dir", str(into)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {p.name: parse_env_file(p) for p in into.glob("*.env")}


@pytest.fixture(scope="module")
def secret_values(
    root: Path,
    made: dict[str, dict[str, str]],
    documented_secrets: dict[str, dict[str, str]],
    shared_secrets: dict[str, str],
) -> dict[str, dict[str, str]]:
    """Secret name -> the keys (and values) it holds, made as deploy/README.md says: the
    credentials and the shared secrets from their env files, the rest with the keys of its
    `kubectl create secret generic` command (values from the examples' generation commands)."""
    readme = (root / "deploy/README.md").read_text(encoding="utf-8")
    from_env_files = dict(
        re.findall(r"kubectl create secret generic (\S+) --from-env-file=deploy/env/(\S+)", readme)
    )
    generated = {k: v for values in documented_secrets.values() for k, v in values.items()}
    values: dict[str, dict[str, str]] = {}
    for name, keys in documented_secrets_of(readme).items():
        values[name] = {key: generated.get(key, "documented") for key in keys}
    for secret, env_file in from_env_files.items():
        if env_file == "secrets.env":
            password = documented_secrets["secrets.env.example"]["password"]
            values[secret] = {key: password for key in shared_secrets}
        elif "$" not in secret:
            values[secret] = made[env_file]
    # A loop over the services (`for service in ...; do kubectl create secret generic
    # voucher-$service-credentials --from-env-file=deploy/env/$service.credentials.env`).
    loop = re.search(
        r"for service in ([a-z ]+); do\s+kubectl create secret generic voucher-\$service-credentials "
        r"--from-env-file=deploy/env/\$service\.credentials\.env",
        readme,
    )
    assert loop, "deploy/README.md: make each service's voucher-<service>-credentials from its env file"
    assert set(loop.group(1).split()) == set(OWNERS), "the README's loop names every service with a database"
    for name in loop.group(1).split():
        values[credentials_of(name)] = made[f"{name}.credentials.env"]
    for row in OWN_SECRETS.values():
        assert row.k8s_secret in values
    return values


def environment(
    objects: list[dict[str, Any]], pod: dict[str, Any], secret_values: dict[str, dict[str, str]]
) -> dict[str, str]:
    """What the pod's one container is given: its ConfigMaps, Secrets and own variables."""
    (container,) = pod["containers"]
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for item in container.get("envFrom", []):
        if "configMapRef" in item:
            env.update(config_maps[item["configMapRef"]["name"]])
        elif "secretRef" in item:
            name = item["secretRef"]["name"]
            if name not in secret_values:
                assert item["secretRef"].get("optional"), f"no documented way to make the Secret {name}"
                continue
            env.update(secret_values[name])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secret_values.get(ref["name"], {}), f"{ref['name']} has no key {ref['key']}"
            env[e["name"]] = secret_values[ref["name"]][ref["key"]]
    return env


def test_every_process_is_given_what_its_settings_need_as_its_own_role(
    rendered: list[dict[str, Any]],
    secret_values: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumers = set(registry.topology().bindings)
    for (kind_, name), pod in pods(rendered).items():
        env = environment(rendered, pod, secret_values)
        if kind_ == "Deployment" and name in OWNERS:
            assert urlsplit(env["POSTGRES_URL"]).username == name, f"{name}: its own database role"
            if name in consumers:
                assert urlsplit(env["AMQP_URL"]).username == name, f"{name}: its own broker user"
            # the settings start in production with these (a weak or missing secret refuses)
            start(settings_class(name), env, monkeypatch)
        elif kind_ == "Job":
            assert urlsplit(env["POSTGRES_URL"]).username == migrated_by(
                next(o for o in rendered if kind_and_name(o) == (kind_, name))
            ), f"{name}: migrates as the service's role, which owns the database"
        elif (kind_, name) == ("CronJob", BACKUP):
            # pg_dump of every database and pg_restore of their owners need the superuser:
            # its URL (and the backup store's keys) from a Secret of the backup's own alone
            assert secrets_read(pod) == {"voucher-backup-secrets"}, f"{name}: {sorted(secrets_read(pod))}"
        elif kind_ == "CronJob":
            for service in INVARIANTS_READS:
                url = env.get(f"{service.upper()}_DATABASE_URL")
                assert url, (
                    f"{name}: no {service.upper()}_DATABASE_URL (it would read as POSTGRES_URL's user)"
                )
                assert urlsplit(url).username == "invariants", f"{name}: the read-only role"
            assert "POSTGRES_URL" not in env, f"{name}: no service's role"
