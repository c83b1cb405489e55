"""The service registry (libs/common/common/registry.py) is the one list of services: compose,
Kubernetes, the env files and the database init script must say the same. Adding a service
is its package plus one registry row; these tests then say what else to write, and where.
The portal (registry.PORTAL) is deployed like a service, everywhere a process is: but with no
database, no broker, none of the shared secrets, and not as one of the gateway's upstreams.
(The RabbitMQ definitions are checked against the registry in test_rabbitmq.py.)"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from common import registry

from .k8s_render import K8S, generated, render


def processes() -> tuple[registry.Service, ...]:
    """Every process deployed from the registry: the services and the portal (the gateway is
    not in the registry)."""
    return (*registry.SERVICES, registry.PORTAL)


def k8s_objects(root: Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((root / K8S).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == kind:
                found[doc["metadata"]["name"]] = doc
    return found


def test_every_registry_service_has_the_documented_port(ports: dict[str, int], portal: str) -> None:
    for svc in processes():
        assert ports.get(svc.name) == svc.port, (
            f"{svc.name}: registry port {svc.port}, deploy {ports.get(svc.name)}"
        )
    assert registry.PORTAL.name == portal and registry.PORTAL.package == portal
    assert portal not in registry.NAMES, "the portal is no service: no database, events or upstream"


def test_every_registry_service_is_a_workspace_package(services_in_workspace: list[str]) -> None:
    assert sorted(registry.NAMES) == services_in_workspace


def test_compose_runs_exactly_the_registry_services_and_the_gateway(
    app_services: dict[str, dict[str, Any]],
) -> None:
    assert sorted(app_services) == sorted({*(svc.name for svc in processes()), "gateway"}), (
        "docker-compose.yml: one block per registry row and the portal (see the comment of x-app-service)"
    )
    for svc in processes():
        block = app_services[svc.name]
        assert str(block["build"]["args"]["PORT"]) == str(svc.port), svc.name
        assert [str(p) for p in block.get("expose", [])] == [str(svc.port)], svc.name
    for svc in registry.SERVICES:
        assert app_services[svc.name]["depends_on"]["rabbitmq"], (
            f"{svc.name} declares the topology at start: it needs the broker"
        )
    gateway_waits = app_services["gateway"]["depends_on"]
    for name in registry.NAMES:
        assert gateway_waits.get(name, {}).get("condition") == "service_healthy", f"gateway -> {name}"
    # The portal needs nothing to start (no database, no broker); the gateway forwards to it
    # and it calls the gateway: a wait either way would be a cycle, or a gateway down for
    # as long as the portal is.
    portal = registry.PORTAL.name
    assert not app_services[portal].get("depends_on"), f"{portal} waits for nothing"
    assert portal not in gateway_waits, f"the gateway must not wait for {portal}"


def test_kubernetes_deploys_exactly_the_registry_services_and_the_gateway(root: Path) -> None:
    deployments, services = k8s_objects(root, "Deployment"), k8s_objects(root, "Service")
    assert sorted(deployments) == sorted({*(svc.name for svc in processes()), "gateway"}), (
        f"{K8S}: one <name>.yaml per registry row and the portal (copy quota.yaml), listed in "
        "kustomization.yaml"
    )
    assert set(deployments) <= set(services), "a Service named after every Deployment"
    for svc in processes():
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
    portal = registry.PORTAL
    assert routed == {f"GATEWAY_{svc.name.upper()}_URL" for svc in processes()}
    for svc in processes():
        assert production_env[f"GATEWAY_{svc.name.upper()}_URL"] == f"http://{svc.name}:{svc.port}"
    # The portal is no service (no /internal/ of its own) and calls the gateway's public API.
    assert production_env["WEB_API_URL"] == f"http://gateway:{production_env['GATEWAY_PORT']}"
    assert production_env["WEB_TRUSTED_PROXY_HOPS"] == "1", (
        f"the gateway is one proxy in front of {portal.name}"
    )
    config = generated(render(root / K8S), "ConfigMap", "voucher-config")["data"]
    assert json.loads(config["SERVICE_URLS"]) == expected, f"SERVICE_URLS in {K8S}/config.env"
    assert config["GATEWAY_WEB_URL"] == production_env["GATEWAY_WEB_URL"], (
        f"GATEWAY_WEB_URL in {K8S}/config.env"
    )


def test_every_registry_service_gets_its_database_on_first_start(root: Path) -> None:
    script = (root / "deploy/postgres/init/01-databases.sh").read_text()
    listed = re.search(r'^DATABASES="([^"]*)"', script, flags=re.MULTILINE)
    assert listed
    missing = sorted(set(registry.NAMES) - set(listed.group(1).split()))
    assert not missing, f"add {missing} to DATABASES in deploy/postgres/init/01-databases.sh"


@pytest.mark.parametrize("change", ["new service", "portal moved"])
@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_a_service_added_to_the_registry_alone_is_caught(
    where: str,
    change: str,
    app_services: dict[str, dict[str, Any]],
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks above are not vacuous: a new registry row without its deployment fails, and
    so does a portal whose registry port the deployment does not follow."""
    if change == "new service":
        extra = registry.Service(name="billing", port=8009, app="billing.main:create_app")
        monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, extra))
        monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "billing"))
    else:
        monkeypatch.setattr(
            registry, "PORTAL", registry.Service(name="web", port=8010, app="web.main:create_app")
        )
    check = (
        test_compose_runs_exactly_the_registry_services_and_the_gateway
        if where == "compose"
        else test_kubernetes_deploys_exactly_the_registry_services_and_the_gateway
    )
    with pytest.raises(AssertionError):
        check(app_services) if where == "compose" else check(root)  # type: ignore[arg-type]


# --- the secrets each process needs, from its settings -----------------------------------------


def settings_class(name: str) -> type[Any]:
    """The Settings of a registry service (<package>.config), of the portal or of the gateway."""
    if name == "gateway":
        package = "gateway"
    elif name == registry.PORTAL.name:
        package = registry.PORTAL.package
    else:
        package = registry.service(name).package
    return importlib.import_module(f"{package}.config").Settings


def env_names(settings: type[Any]) -> set[str]:
    """Every environment variable a Settings class reads (its prefix, or a shared name)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def start(settings: type[Any], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build the settings as the container does: from these environment variables alone."""
    with monkeypatch.context() as patch:
        read = env_names(settings)
        for key in list(os.environ):
            if key.upper() in read:
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return settings(_env_file=None)


def check_own_secrets_against_settings(
    own_secrets: Mapping[str, Any],
    base: Mapping[str, str],
    made: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
    portal_base: Mapping[str, str],
) -> None:
    """``base``: what a service and the gateway read (production.env and the shared secrets);
    ``portal_base``: what the portal reads (production.env alone)."""
    for name in (*registry.NAMES, "gateway", registry.PORTAL.name):
        settings = settings_class(name)
        row = own_secrets.get(name)
        own = row.variables if row else frozenset()
        required = row.required if row else frozenset()
        unread = sorted(own - env_names(settings))
        assert not unread, f"{name}'s settings read no {unread}: OWN_SECRETS (tests/deploy/conftest.py)"
        given = {key: made[key] for key in own if key in made}
        undocumented = sorted(required - given.keys())
        assert not undocumented, f"{row.example if row else name}: no generation command makes {undocumented}"
        env = portal_base if name == registry.PORTAL.name else base
        try:
            start(settings, {**env, **given}, monkeypatch)
        except ValueError as exc:
            where = f"and {row.example}" if row else "alone"
            shared = "" if env is portal_base else " and the shared secrets"
            raise AssertionError(
                f"{name} refuses to start in production on production.env{shared} "
                f"{where}: {exc}\nA secret of its own goes in deploy/env/{name}.secrets.env.example, "
                f"the Secret voucher-{name}-secrets and OWN_SECRETS (tests/deploy/conftest.py)"
            ) from None
        for key in sorted(required):
            try:
                start(settings, {k: v for k, v in {**env, **given}.items() if k != key}, monkeypatch)
            except ValueError:
                continue
            raise AssertionError(
                f"{name} starts in production without {key}: mark it optional in OWN_SECRETS"
            )


@pytest.fixture
def production_base(
    production_env: dict[str, str],
    shared_secrets: dict[str, str],
    documented_secrets: dict[str, dict[str, str]],
) -> dict[str, str]:
    """What every process reads in production: production.env and secrets.env (its documented
    service-token secret; the example's placeholders elsewhere, which no setting checks)."""
    password = documented_secrets["secrets.env.example"]["password"]
    return {**production_env, **shared_secrets, "SERVICE_TOKEN_SECRET": password}


def test_each_process_holds_exactly_the_secrets_its_settings_need(
    own_secrets: dict[str, Any],
    production_base: dict[str, str],
    production_env: dict[str, str],
    documented_secrets: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each registry service and the gateway start in production on production.env, the
    shared secrets and (for a service in OWN_SECRETS) the values its example's commands make,
    and refuse to without any one of those it requires; the portal likewise, without the
    shared secrets (it is given none). So a service whose settings come to need a secret of
    their own fails here until it has its secret file and Secret."""
    made = {k: v for values in documented_secrets.values() for k, v in values.items()}
    check_own_secrets_against_settings(own_secrets, production_base, made, monkeypatch, production_env)


@pytest.mark.parametrize("service", ["contracts", "identity", "web"])
def test_a_service_whose_own_secrets_are_not_listed_is_caught(
    service: str,
    own_secrets: dict[str, Any],
    production_base: dict[str, str],
    production_env: dict[str, str],
    documented_secrets: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above is not vacuous: without its row, the service refuses to start."""
    made = {k: v for values in documented_secrets.values() for k, v in values.items()}
    table = {name: row for name, row in own_secrets.items() if name != service}
    with pytest.raises(AssertionError, match=f"{service} refuses to start"):
        check_own_secrets_against_settings(table, production_base, made, monkeypatch, production_env)


def test_the_checklist_for_a_new_service_names_tests_that_exist(root: Path) -> None:
    """CONTRIBUTING.md's "Adding a service" names the test that holds each step
    (`test_file.py::test_name`, or `::test_name` for the file named just before): each one
    is a test of tests/deploy, so the checklist does not point at tests renamed or gone."""
    text = (root / "CONTRIBUTING.md").read_text(encoding="utf-8")
    checklist = text.split("## Adding a service", 1)[1].split("\n## ", 1)[0]
    named, current = [], None
    for match in re.finditer(r"`(test_\w+\.py)?::(test_\w+)`", checklist):
        current = match.group(1) or current
        assert current, f"::{match.group(2)} names no file before it"
        named.append((current, match.group(2)))
    assert len(named) >= 10, named
    for file, test in named:
        source = (root / "tests/deploy" / file).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {test}\(", source, re.MULTILINE), (
            f"CONTRIBUTING.md: no {file}::{test}"
        )


# --- what compose gives each process ------------------------------------------------------------


def compose_environments(
    compose: dict[str, Any], app_services: dict[str, dict[str, Any]], files: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Each application process's environment in compose: its env_file, its `environment`,
    then every secret file it lists (files: name -> values), as deploy/entrypoint.sh loads them."""
    from .test_compose import env_files_of, environment_of, secrets_of

    found = {}
    for name, block in app_services.items():
        env: dict[str, str] = {}
        for env_file in env_files_of(block):
            env.update(files[Path(env_file).name])
        env.update({k: v for k, v in environment_of(block).items() if v is not None})
        for secret in secrets_of(block):
            assert Path(compose["secrets"][secret]["file"]).name == secret
            env.update(files[secret])
        found[name] = env
    return found


@pytest.fixture
def compose_files(
    root: Path,
    tmp_path: Path,
    production_env: dict[str, str],
    production_base: dict[str, str],
    own_secrets: dict[str, Any],
    documented_secrets: dict[str, dict[str, str]],
) -> dict[str, dict[str, str]]:
    """The files compose gives: production.env, secrets.env and the own secrets as their
    examples' commands make them, the credentials as make-credentials.py writes them."""
    import subprocess
    import sys

    from .conftest import parse_env_file

    subprocess.run(
        [sys.executable, str(root / "deploy/env/make-credentials.py"), "--dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    made = {k: v for values in documented_secrets.values() for k, v in values.items()}
    files = {p.name: parse_env_file(p) for p in tmp_path.glob("*.credentials.env")}
    files["production.env"] = production_env
    files["secrets.env"] = {k: v for k, v in production_base.items() if k not in production_env}
    for row in own_secrets.values():
        files[row.secret] = {k: made[k] for k in row.variables if k in made}
    return files


def test_each_process_starts_on_what_compose_gives_it(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    compose_files: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same property as above, through docker-compose.yml's lists: each process starts in
    production on its env_file and the secret files its block lists, and reads something of
    each of those files (none it has no use for)."""
    environments = compose_environments(compose, app_services, compose_files)
    for name, env in environments.items():
        settings = settings_class(name)
        try:
            start(settings, env, monkeypatch)
        except ValueError as exc:
            raise AssertionError(f"{name} refuses to start on what compose gives it: {exc}") from None
        read = env_names(settings)
        for secret in app_services[name].get("secrets", []):
            assert read & compose_files[secret].keys(), f"{name} reads nothing of {secret}"


@pytest.mark.parametrize(
    ("service", "secret"), [("identity", "identity.secrets.env"), ("web", "web.secrets.env")]
)
def test_a_process_whose_block_lacks_a_secret_file_is_caught(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    compose_files: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    secret: str,
) -> None:
    import copy

    broken = copy.deepcopy(app_services)
    broken[service]["secrets"] = [s for s in broken[service]["secrets"] if s != secret]
    with pytest.raises(AssertionError, match=f"{service} refuses to start"):
        test_each_process_starts_on_what_compose_gives_it(compose, broken, compose_files, monkeypatch)
