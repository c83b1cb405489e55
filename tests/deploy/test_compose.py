"""docker-compose.yml and deploy/env: valid against the Compose Specification (schema
vendored in this folder, so this runs offline), plus what a reviewer checks: health-gated
start-up, production mode, secrets only in secret files (never in a container's
configuration), every service deployed."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from common.testing import infra

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "compose-spec.json"

# What secrets.env holds for every service but the portal: no database or broker password
# (each service has its own role and user, in <service>.credentials.env): the service-token
# secret and METRICS_TOKEN, which opens /metrics to Prometheus (test_monitoring.py).
SHARED_SECRETS = {"SERVICE_TOKEN_SECRET", "METRICS_TOKEN"}
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)

PRODUCTION_ENV = "deploy/env/production.env"
SECRETS_ENV = "deploy/env/secrets.env"
CADDY_ENV = "deploy/env/caddy.env"
MAKE_CREDENTIALS = "deploy/env/make-credentials.py"
# Made by MAKE_CREDENTIALS, never committed: the infrastructure's passwords (compose secret
# files of postgres and rabbitmq) and each service's own credentials.
INFRA_SECRETS = {"postgres": "deploy/env/postgres.secrets.env", "rabbitmq": "deploy/env/rabbitmq.secrets.env"}


def credentials_env(service: str) -> str:
    return f"deploy/env/{service}.credentials.env"


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A compose service's `environment`, in either of its two forms, as a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {key: value for key, _, value in (item.partition("=") for item in env)}
    return {key: None if value is None else str(value) for key, value in env.items()}


def env_files_of(service: dict[str, Any]) -> list[Any]:
    files = service.get("env_file") or []
    return [files] if isinstance(files, str) else list(files)


def secrets_of(service: dict[str, Any]) -> list[str]:
    """The compose secrets a service lists (the short syntax: /run/secrets/<name>)."""
    found = []
    for secret in service.get("secrets") or []:
        assert isinstance(secret, str), f"the short syntax, mounted as /run/secrets/<name>: {secret!r}"
        found.append(secret)
    return found


def short_volumes(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each volume in short syntax; an anonymous one (a path
    alone, the container's own /tmp) has no source."""
    found = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), f"use the short volume syntax: {volume!r}"
        if ":" not in volume:
            found.append(("", volume, "rw"))
            continue
        source, target, *mode = volume.split(":")
        found.append((source, target, mode[0] if mode else "rw"))
    return found


def all_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from all_strings(key)
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# --- the Compose Specification ---------------------------------------------------------------


def test_vendored_schema_is_the_recorded_one() -> None:
    recorded = re.search(r"sha256: `([0-9a-f]{64})`", (HERE / "compose-spec.README.md").read_text())
    assert recorded, "compose-spec.README.md must record the schema's sha256"
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == recorded.group(1)


def test_compose_file_is_valid_against_the_compose_spec(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(map(str, e.absolute_path)))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "identity", "depends_on", "postgres", "condition"), "service_ready"),
        (("services", "gateway", "healthcheck", "intervall"), "5s"),
        (("services", "postgres", "restart"), ["always"]),
        (("services", "rabbitmq", "env_file"), [{"required": False}]),
    ],
)
def test_the_schema_catches_mistakes(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator, path: tuple[str, ...], value: Any
) -> None:
    """The validation above is not vacuous: each of these mistakes is an error."""
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert not validator.is_valid(broken)


# --- what runs -------------------------------------------------------------------------------


def test_every_service_of_the_workspace_is_deployed(
    app_services: dict[str, dict[str, Any]],
    services_in_workspace: list[str],
    ports: dict[str, int],
    portal: str,
    root: Path,
    version: str,
) -> None:
    assert (root / portal / "pyproject.toml").exists(), f"the portal is the workspace member {portal}/"
    expected = {*services_in_workspace, "gateway", portal}
    missing = sorted(expected - app_services.keys())
    assert not missing, (
        f"services/{missing} has no block in docker-compose.yml: add one like identity's "
        "(`<<: *app-service`, build args SERVICE and PORT) and its GATEWAY_<SERVICE>_URL"
    )
    unknown = sorted(app_services.keys() - expected)
    assert not unknown, f"docker-compose.yml builds {unknown}, which is no package of the workspace"
    for name, service in app_services.items():
        build = service["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert str(build["args"]["PORT"]) == str(ports[name]), f"{name} listens on {ports[name]}"
        assert service.get("image") == f"voucher-{name}:${{VOUCHER_VERSION:-{version}}}"


def test_app_services_start_after_healthy_postgres_and_rabbitmq(
    app_services: dict[str, dict[str, Any]], portal: str
) -> None:
    for name, service in app_services.items():
        if name == portal:
            # No database, no broker; and not the gateway, which forwards to it (a cycle).
            assert not service.get("depends_on"), f"{portal} needs nothing to start"
            continue
        depends = service.get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form to carry a condition"
        for infrastructure in ("postgres", "rabbitmq"):
            assert infrastructure in depends, f"{name} must wait for {infrastructure}"
        for dependency, how in depends.items():
            assert how.get("condition") == "service_healthy", f"{name} -> {dependency}: {how}"
            assert how.get("required", True) is True


def test_gateway_waits_for_the_services_it_routes_to(
    app_services: dict[str, dict[str, Any]], portal: str
) -> None:
    depends = app_services["gateway"]["depends_on"]
    for name in app_services.keys() - {"gateway", portal}:
        assert depends.get(name, {}).get("condition") == "service_healthy", f"gateway -> {name}"
    # The portal calls the gateway's API: the gateway starts without it (its pages answer 502
    # meanwhile), or neither would ever be healthy when the portal came to wait for the API.
    assert portal not in depends, f"gateway -> {portal}: no wait for the portal"


def test_app_services_report_readiness(app_services: dict[str, dict[str, Any]]) -> None:
    for name, service in app_services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] == "CMD", f"{name}: exec form, no shell needed"
        assert test[1] == "python", f"{name}: the slim image has python, not curl"
        assert "/readyz" in " ".join(test)
        assert {"interval", "timeout", "retries", "start_period"} <= check.keys()


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_the_healthcheck_command_reads_readyz(
    app_services: dict[str, dict[str, Any]], status: int, exit_code: int
) -> None:
    """Run the compose healthcheck's command against a local stand-in for /readyz."""
    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        argv = app_services["identity"]["healthcheck"]["test"][1:]
        env = {"PORT": str(server.server_address[1]), "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, *argv[1:]], env=env, timeout=30, check=False)
        assert result.returncode == exit_code
    finally:
        server.shutdown()
        server.server_close()


def test_app_services_run_in_production(
    app_services: dict[str, dict[str, Any]], production_env: dict[str, str]
) -> None:
    assert production_env["ENVIRONMENT"] == "production"
    for name, service in app_services.items():
        assert environment_of(service).get("ENVIRONMENT") == "production", name
        assert service.get("restart") == "unless-stopped", name
        assert service.get("read_only") is True, name
        assert "ALL" in service.get("cap_drop", []), name


def test_infrastructure_is_pinned_and_reports_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres, rabbitmq = services["postgres"], services["rabbitmq"]
    assert postgres["image"] == "postgres:16-alpine"
    assert rabbitmq["image"] == "rabbitmq:3.13-management-alpine"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # Over TCP: the socket alone answers while the init scripts still run.
    assert "-h" in postgres["healthcheck"]["test"]
    assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    for name in ("postgres", "rabbitmq"):
        assert services[name].get("restart") == "unless-stopped"
        named = [source for source, _, _ in short_volumes(services[name]) if not source.startswith(".")]
        assert named and all(v in compose.get("volumes", {}) for v in named), (
            f"{name} keeps data on a named volume"
        )
    assert rabbitmq.get("hostname"), "a fixed hostname keeps RabbitMQ's node name and data"


def test_infrastructure_is_configured_from_deploy(compose: dict[str, Any], root: Path) -> None:
    services = compose["services"]
    postgres_mounts = short_volumes(services["postgres"])
    assert ("./deploy/postgres/init", "/docker-entrypoint-initdb.d", "ro") in postgres_mounts
    rabbit_mounts = short_volumes(services["rabbitmq"])
    assert ("./deploy/rabbitmq", "/etc/rabbitmq/voucher", "ro") in rabbit_mounts
    assert ("./deploy/rabbitmq/rabbitmq.conf", "/etc/rabbitmq/conf.d/20-voucher.conf", "ro") in rabbit_mounts
    # Overriding the entrypoint clears the image's command: it must be given again.
    assert services["rabbitmq"]["entrypoint"] == ["/bin/sh", "/etc/rabbitmq/voucher/entrypoint.sh"]
    assert services["rabbitmq"]["command"] == ["rabbitmq-server"]
    for name, service in services.items():
        for source, _, _ in short_volumes(service):
            if source.startswith("."):
                assert (root / source).exists(), f"{name} mounts {source}, which does not exist"
    assert environment_of(services["postgres"]).get("POSTGRES_USER")
    assert environment_of(services["rabbitmq"]).get("RABBITMQ_DEFAULT_USER")


def test_identity_keeps_its_files_on_a_named_volume(
    compose: dict[str, Any], app_services: dict[str, dict[str, Any]], production_env: dict[str, str]
) -> None:
    assert production_env["IDENTITY_STORAGE_URL"] == "file:///data/files"
    mounts = {target: source for source, target, _ in short_volumes(app_services["identity"])}
    assert mounts.get("/data/files") in compose["volumes"]


def test_only_the_tls_proxy_is_published_and_the_gateway_routes_to_every_service(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    production_env: dict[str, str],
    ports: dict[str, int],
) -> None:
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"caddy"}, f"only the TLS-terminating proxy is public: {published}"
    assert [str(p) for p in compose["services"]["caddy"]["ports"]] == [
        "${HTTPS_PUBLISHED_PORT:-443}:443",
        "${HTTPS_PUBLISHED_PORT:-443}:443/udp",
        "${HTTP_PUBLISHED_PORT:-80}:80",
    ]
    assert [str(p) for p in app_services["gateway"]["expose"]] == ["8000"]
    for name in app_services:
        if name != "gateway":
            assert production_env.get(f"GATEWAY_{name.upper()}_URL") == f"http://{name}:{ports[name]}"
    assert production_env["GATEWAY_PORT"] == "8000"
    assert production_env["IDENTITY_JWKS_URL"] == "http://identity:8001/.well-known/jwks.json"


def test_the_tls_proxy_serves_https_with_hsts_and_one_trusted_hop(
    compose: dict[str, Any], production_env: dict[str, str], parse_env: Any, root: Path
) -> None:
    caddy = compose["services"]["caddy"]
    assert re.fullmatch(r"caddy:2\.\d+-alpine", caddy["image"]), "pinned to a minor version"
    assert caddy["depends_on"] == {"gateway": {"condition": "service_healthy"}}
    assert env_files_of(caddy) == [CADDY_ENV], "no secret: the certificates it obtains stay on its volume"
    mounts = short_volumes(caddy)
    assert ("./deploy/caddy/Caddyfile", "/etc/caddy/Caddyfile", "ro") in mounts
    assert {target for source, target, _ in mounts if source in compose["volumes"]} == {"/data", "/config"}
    assert caddy["cap_drop"] == ["ALL"] and caddy["cap_add"] == ["NET_BIND_SERVICE"]
    settings = parse_env(root / CADDY_ENV)
    assert settings.keys() == {"SITE_ADDRESS", "CADDY_TLS"}

    caddyfile = (root / "deploy/caddy/Caddyfile").read_text()
    lines = [
        line.strip() for line in caddyfile.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    assert "{$SITE_ADDRESS} {" in lines and "tls {$CADDY_TLS}" in lines
    assert 'Strict-Transport-Security "max-age=31536000; includeSubDomains"' in lines
    assert "reverse_proxy gateway:8000" in lines
    # Caddy trusts no proxy in front: a client's own X-Forwarded-For never reaches the gateway,
    # which takes the one address Caddy gives (gateway/tests/test_client_address.py).
    assert not [line for line in lines if "trusted_proxies" in line]
    assert production_env["GATEWAY_TRUSTED_PROXY_HOPS"] == "1"
    assert production_env["WEB_TRUSTED_PROXY_HOPS"] == "1", "the portal's one proxy is the gateway"


def test_temporary_files_go_to_disk_not_to_the_containers_memory(
    app_services: dict[str, dict[str, Any]],
) -> None:
    """Issue 17, section 9: uploads over 1 MiB (and pyHanko's, reportlab's temporary files)
    spool to the process's temporary folder, /tmp; a tmpfs there counts against the
    container's memory limit (two 10 MiB uploads evicted identity). Each app container's
    /tmp is a volume of its own (the root file system stays read-only)."""
    for name, service in app_services.items():
        assert service.get("read_only") is True, name
        assert "/tmp" not in (service.get("tmpfs") or []), f"{name}: /tmp is a tmpfs (memory)"
        assert "/tmp" in (service.get("volumes") or []), f"{name}: no disk-backed /tmp"


def test_every_container_has_resource_limits_and_rotated_logs(compose: dict[str, Any]) -> None:
    memory = re.compile(r"\d+[MG]")
    for name, service in compose["services"].items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert float(limits.get("cpus", 0)) > 0, f"{name}: no CPU limit"
        assert memory.fullmatch(str(limits.get("memory", ""))), f"{name}: no memory limit"
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", f"{name}: logs rotated by the json-file driver"
        assert {"max-size", "max-file"} <= logging.get("options", {}).keys(), f"{name}: logs rotate"
    # The application services' figures come from a load test: test_footprint.py.


# --- settings and secrets ----------------------------------------------------------------------


def check_secret_files(
    app_services: dict[str, dict[str, Any]],
    secrets: dict[str, Any],
    own_secrets: dict[str, Any],
    root: Path,
    portal: str,
) -> None:
    """Every application service: production.env its one env file (the settings, in its
    configuration), its secrets as compose secret files alone, each named after its file and
    ending in .env (deploy/entrypoint.sh reads /run/secrets/*.env)."""
    shared = Path(SECRETS_ENV).name
    for name, service in app_services.items():
        assert env_files_of(service) == [PRODUCTION_ENV], (
            f"{name}: {PRODUCTION_ENV} alone as an env_file; a secret in an env_file is in the "
            "container's configuration (docker inspect): list it under `secrets:`"
        )
        mounted = secrets_of(service)
        for secret in mounted:
            assert secret in secrets, f"{name}: no top-level secret {secret}"
            assert secrets[secret].get("file") == f"deploy/env/{secret}", (
                f"secret {secret}: the file deploy/env/{secret}, whose name it has"
            )
            assert secret.endswith(".env"), f"{name}: {secret} is no *.env, the entrypoint skips it"
        if name == portal:
            # The portal holds no database, broker or service-token secret: its own alone.
            assert shared not in mounted, f"{name}: its own secrets, not {shared}"
        else:
            assert mounted[:2] == [shared, Path(credentials_env(name)).name], (
                f"{name}: {shared}, then its own database role and broker user"
            )
        for other in app_services:
            if other != name:
                assert Path(credentials_env(other)).name not in mounted, (
                    f"{name}: {other}'s credentials go to {other} alone"
                )
        for owner in own_secrets.values():
            if name == owner.service:
                assert owner.secret in mounted, (
                    f"{name} refuses to start in production without {sorted(owner.required)}: "
                    f"add {owner.secret} to its secrets (a top-level secret, file {owner.env_file})"
                )
            else:
                assert owner.secret not in mounted, (
                    f"{name}: {owner.service}'s private keys go to {owner.service} alone"
                )
        for secret in mounted:
            made = secret.endswith(".credentials.env")  # by MAKE_CREDENTIALS
            f = f"deploy/env/{secret}"
            assert made or (root / f).exists() or (root / f"{f}.example").exists(), f


def test_app_services_get_their_secrets_as_secret_files(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    own_secrets: dict[str, Any],
    root: Path,
    portal: str,
) -> None:
    check_secret_files(app_services, compose["secrets"], own_secrets, root, portal)


@pytest.mark.parametrize(
    ("service", "change", "secret"),
    [
        ("contracts", "remove", "contracts.secrets.env"),  # contracts without its own secrets
        ("identity", "remove", "identity.secrets.env"),
        ("web", "remove", "web.secrets.env"),
        ("gateway", "remove", "gateway.credentials.env"),  # without its own credentials
        ("quota", "add", "contracts.secrets.env"),  # another service's secrets
        ("contracts", "add", "identity.secrets.env"),
        ("gateway", "add", "web.secrets.env"),
        ("web", "add", "secrets.env"),  # the shared secrets, which the portal has no use for
        ("quota", "add", "orders.credentials.env"),  # another service's database role
        ("identity", "env_file", "deploy/env/identity.secrets.env"),  # back in the configuration
        ("web", "env_file", "deploy/env/web.secrets.env"),
        ("quota", "rename", "quota.credentials"),  # not *.env: the entrypoint would skip it
    ],
)
def test_a_service_without_its_secrets_or_with_anothers_is_caught(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    own_secrets: dict[str, Any],
    root: Path,
    portal: str,
    service: str,
    change: str,
    secret: str,
) -> None:
    """The check above is not vacuous."""
    broken = copy.deepcopy(app_services)
    secrets = copy.deepcopy(compose["secrets"])
    block = broken[service]
    mounted = secrets_of(block)
    if change == "remove":
        block["secrets"] = [s for s in mounted if s != secret]
    elif change == "add":
        block["secrets"] = [*mounted, secret]
    elif change == "env_file":
        block["env_file"] = [*env_files_of(block), secret]
        block["secrets"] = [s for s in mounted if s != Path(secret).name]
    else:
        old = f"{secret}.env"
        secrets[secret] = secrets.pop(old)
        block["secrets"] = [secret if s == old else s for s in mounted]
    with pytest.raises(AssertionError):
        check_secret_files(broken, secrets, own_secrets, root, portal)


def test_no_secret_is_written_in_the_compose_file(
    compose: dict[str, Any],
    compose_text: str,
    shared_secrets: dict[str, str],
    own_secret_examples: dict[str, dict[str, str]],
) -> None:
    secret_keys = shared_secrets.keys() | {k for own in own_secret_examples.values() for k in own}
    for name, service in compose["services"].items():
        env = environment_of(service)
        assert not secret_keys & env.keys(), f"{name} sets a secret inline: {secret_keys & env.keys()}"
        suspicious = [key for key in env if SECRET_NAME.search(key)]
        assert not suspicious, f"{name} sets {suspicious} inline: put them in a secret file"
        for f in env_files_of(service):
            assert f in (PRODUCTION_ENV, CADDY_ENV), f"{name}: {f} is an env_file: a secret file instead"
    assert not CREDENTIALS_IN_URL.search(compose_text), "a URL with credentials in docker-compose.yml"


def test_production_env_holds_no_secret(
    production_env: dict[str, str],
    shared_secrets: dict[str, str],
    own_secret_examples: dict[str, dict[str, str]],
) -> None:
    own = {k for example in own_secret_examples.values() for k in example}
    assert not production_env.keys() & (shared_secrets.keys() | own)
    assert not [key for key in production_env if SECRET_NAME.search(key)]
    assert not [v for v in production_env.values() if CREDENTIALS_IN_URL.search(v)]
    # The bus names must stay the defaults that deploy/rabbitmq/definitions.json declares.
    assert not production_env.keys() & {
        "BUS_EXCHANGE",
        "BUS_QUEUE_PREFIX",
        "BUS_RETRY_DELAYS",
        "BUS_TRANSPORT",
    }


def test_secret_examples_name_every_secret_with_a_placeholder(
    root: Path,
    shared_secrets: dict[str, str],
    own_secrets: dict[str, Any],
    own_secret_examples: dict[str, dict[str, str]],
) -> None:
    assert shared_secrets.keys() == SHARED_SECRETS
    examples = {p.name for p in (root / "deploy/env").glob("*.secrets.env.example")}
    assert examples == {Path(row.example).name for row in own_secrets.values()}, (
        "one <service>.secrets.env.example per row of OWN_SECRETS (tests/deploy/conftest.py)"
    )
    for name, row in own_secrets.items():
        example = own_secret_examples[name]
        assert example.keys() == row.variables, row.example
        assert all(key.startswith(f"{name.upper()}_") for key in example), f"{row.example}: {name}'s settings"
    for key, value in {
        **shared_secrets,
        **{k: v for e in own_secret_examples.values() for k, v in e.items()},
    }.items():
        assert "CHANGE_ME" in value, f"{key} must hold a placeholder, not a value"


def make_credentials(root: Path, into: Path, parse: Any) -> dict[str, dict[str, str]]:
    """Run deploy/env/make-credentials.py into ``into``: file name -> its values."""
    result = subprocess.run(
        [sys.executable, str(root / MAKE_CREDENTIALS), "--dir", str(into)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {p.name: parse(p) for p in sorted(into.glob("*.env"))}


@pytest.fixture(scope="module")
def credentials(
    root: Path, tmp_path_factory: pytest.TempPathFactory, parse_env: Any
) -> dict[str, dict[str, str]]:
    return make_credentials(root, tmp_path_factory.mktemp("credentials"), parse_env)


def test_each_service_connects_as_its_own_role_and_broker_user(
    compose: dict[str, Any],
    app_services: dict[str, dict[str, Any]],
    credentials: dict[str, dict[str, str]],
    portal: str,
    root: Path,
    parse_env: Any,
) -> None:
    """What make-credentials.py writes: each service's URLs name its own role and user, with
    the passwords postgres and rabbitmq make them with; the superuser's and the
    administrator's passwords are in the infrastructure's secret files alone."""
    from common import registry

    pg = credentials["postgres.secrets.env"]
    rabbit = credentials["rabbitmq.secrets.env"]
    superuser = environment_of(compose["services"]["postgres"])["POSTGRES_USER"]
    admin = environment_of(compose["services"]["rabbitmq"])["RABBITMQ_DEFAULT_USER"]
    consumers = set(registry.topology().bindings)
    owners = {*registry.NAMES, "gateway"}
    assert {
        n.removesuffix(".credentials.env") for n in credentials if n.endswith(".credentials.env")
    } == owners | {"invariants"}
    assert pg.keys() == {
        "POSTGRES_PASSWORD",
        "INVARIANTS_DB_PASSWORD",  # voucher-invariants' read-only role
        *(f"{n.upper()}_DB_PASSWORD" for n in owners),
    }
    assert rabbit.keys() == {"RABBITMQ_DEFAULT_PASS", *(f"{n.upper()}_AMQP_PASSWORD" for n in consumers)}
    passwords = [*pg.values(), *rabbit.values()]
    assert len(set(passwords)) == len(passwords), "every password is its own"
    for name in owners:
        values = credentials[f"{name}.credentials.env"]
        db = urlsplit(values["POSTGRES_URL"])
        assert (db.scheme, db.hostname, db.port, db.username) == ("postgresql", "postgres", 5432, name)
        assert db.password == pg[f"{name.upper()}_DB_PASSWORD"]
        assert db.path in ("", "/"), "a server URL: each service connects to the database named after itself"
        if name in consumers:
            amqp = urlsplit(values["AMQP_URL"])
            assert (amqp.scheme, amqp.hostname, amqp.port, amqp.username) == ("amqp", "rabbitmq", 5672, name)
            assert amqp.password == rabbit[f"{name.upper()}_AMQP_PASSWORD"]
        else:
            assert "AMQP_URL" not in values, f"{name} is not on the bus"
    # voucher-invariants reads the databases it checks as its read-only role, nothing else.
    from invariants.readers import SERVICES as READS

    reader = credentials["invariants.credentials.env"]
    assert reader.keys() == {f"{s.upper()}_DATABASE_URL" for s in READS}
    for service in READS:
        url = urlsplit(reader[f"{service.upper()}_DATABASE_URL"])
        assert (url.hostname, url.username, url.path) == ("postgres", "invariants", f"/{service}")
        assert url.password == pg["INVARIANTS_DB_PASSWORD"]
    # No service's environment carries the superuser's or the administrator's credentials:
    # everything its env file and its secret files hold (the examples for the secrets files).
    for name, service in app_services.items():
        env: dict[str, str] = {}
        files = [*env_files_of(service), *(compose["secrets"][s]["file"] for s in secrets_of(service))]
        for f in files:
            path = Path(f)
            if path.name in credentials:
                env.update(credentials[path.name])
            else:
                env.update(parse_env(root / (f if (root / f).exists() else f"{f}.example")))
        assert not env.keys() & {"POSTGRES_PASSWORD", "RABBITMQ_DEFAULT_PASS"}, name
        assert pg["POSTGRES_PASSWORD"] not in "".join(env.values()), name
        assert rabbit["RABBITMQ_DEFAULT_PASS"] not in "".join(env.values()), name
        for value in env.values():
            for url in re.findall(r"[a-z]+://[^\s]+", value):
                assert urlsplit(url).username not in (superuser, admin), f"{name}: {url}"
        if name == portal:
            assert "POSTGRES_URL" not in env and "AMQP_URL" not in env
        else:
            assert urlsplit(env["POSTGRES_URL"]).username == name


def test_make_credentials_keeps_what_exists_and_makes_what_is_missing(
    root: Path, tmp_path: Path, parse_env: Any
) -> None:
    first = make_credentials(root, tmp_path, parse_env)
    pg_file = tmp_path / "postgres.secrets.env"
    # A service added since: its password line is missing. The others stay as they were.
    pg_file.write_text(
        "".join(line + "\n" for line in pg_file.read_text().splitlines() if "QUOTA_DB" not in line)
    )
    again = make_credentials(root, tmp_path, parse_env)
    assert again["rabbitmq.secrets.env"] == first["rabbitmq.secrets.env"]
    changed = {k for k, v in again["postgres.secrets.env"].items() if first["postgres.secrets.env"][k] != v}
    assert changed == {"QUOTA_DB_PASSWORD"}
    assert again["quota.credentials.env"]["POSTGRES_URL"] != first["quota.credentials.env"]["POSTGRES_URL"]
    assert again["orders.credentials.env"] == first["orders.credentials.env"]
    for path in tmp_path.glob("*.env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_the_infrastructure_reads_its_passwords_from_secret_files(
    compose: dict[str, Any], app_services: dict[str, dict[str, Any]], root: Path
) -> None:
    services = compose["services"]
    files = {name: spec["file"] for name, spec in compose["secrets"].items()}
    assert {name: files.get(name) for name in INFRA_SECRETS} == INFRA_SECRETS
    # The others are the application services' (test_app_services_get_their_secrets_as_secret_files).
    assert all(files[name] == f"deploy/env/{name}" for name in files.keys() - INFRA_SECRETS.keys())
    # The backup service is the operator's tool: pg_dump reads every table of every database
    # and restore.sh makes them again with their owners, as the superuser (never a service).
    operators = {"backup": ["postgres"]}
    for name, service in services.items():
        infrastructure = [s for s in service.get("secrets", []) if s in INFRA_SECRETS]
        assert infrastructure == ([name] if name in INFRA_SECRETS else operators.get(name, [])), (
            f"{name}: the {list(INFRA_SECRETS)} secrets go to their own container alone"
        )
        if name not in app_services:
            assert service.get("secrets", []) == infrastructure, f"{name}: no service's secret"
    assert "env_file" not in services["postgres"] and "env_file" not in services["rabbitmq"]
    assert services["postgres"]["entrypoint"] == ["/bin/sh", "/etc/voucher/postgres-entrypoint.sh"]
    assert services["postgres"]["command"] == ["postgres"]
    assert ("./deploy/postgres/entrypoint.sh", "/etc/voucher/postgres-entrypoint.sh", "ro") in short_volumes(
        services["postgres"]
    )
    script = (root / "deploy/postgres/entrypoint.sh").read_text()
    assert 'secrets="${VOUCHER_SECRETS_FILE:-/run/secrets/postgres}"' in script
    rabbit_script = (root / "deploy/rabbitmq/entrypoint.sh").read_text()
    assert 'secrets="${VOUCHER_SECRETS_FILE:-/run/secrets/rabbitmq}"' in rabbit_script


def test_the_postgres_entrypoint_exports_the_secret_file(root: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker-entrypoint.sh").write_text('#!/bin/sh\necho "$POSTGRES_PASSWORD $QUOTA_DB_PASSWORD $*"\n')
    (fake / "docker-entrypoint.sh").chmod(0o755)
    secrets = tmp_path / "postgres"
    secrets.write_text("POSTGRES_PASSWORD=super-pw\nQUOTA_DB_PASSWORD=quota-pw\n")
    env = {"PATH": f"{fake}:/usr/bin:/bin", "VOUCHER_SECRETS_FILE": str(secrets)}
    script = str(root / "deploy/postgres/entrypoint.sh")
    ran = subprocess.run(["sh", script, "postgres"], env=env, capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stdout.strip()) == (0, "super-pw quota-pw postgres")
    env["VOUCHER_SECRETS_FILE"] = str(tmp_path / "missing")
    ran = subprocess.run(["sh", script, "postgres"], env=env, capture_output=True, text=True, check=False)
    assert ran.returncode != 0 and "postgres.secrets.env" in ran.stderr


def test_the_documented_generation_commands_make_valid_secrets(
    root: Path, parse_env: Any, documented_secrets: dict[str, dict[str, str]]
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    made: dict[str, str] = {}
    for values in documented_secrets.values():
        assert not made.keys() & values.keys(), "each secret is made by one file's commands"
        made.update(values)
    assert made.keys() == {
        "password",
        "IDENTITY_JWT_PRIVATE_KEY",
        "IDENTITY_FIELD_ENCRYPTION_KEY",
        "IDENTITY_HASH_KEY",
        "IDENTITY_ADMIN_PASSWORD",
        "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY",
        "CONTRACTS_SIGNING_CA_KEY_PEM",
        "CONTRACTS_SIGNING_CA_CERT_PEM",
        "WEB_SESSION_SECRET",
    }
    key = load_pem_private_key(made["IDENTITY_JWT_PRIVATE_KEY"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert len(base64.b64decode(made["IDENTITY_FIELD_ENCRYPTION_KEY"], validate=True)) == 32
    assert len(base64.b64decode(made["IDENTITY_HASH_KEY"], validate=True)) == 32
    # identity starts in production with exactly these settings (it refuses anything missing).
    from identity.config import Settings

    production = parse_env(root / PRODUCTION_ENV)
    shared = {"SERVICE_TOKEN_SECRET": made["password"]}
    env = {**production, **shared, **{k: v for k, v in made.items() if k.startswith("IDENTITY_")}}
    env["IDENTITY_ADMIN_PHONE"] = "13800000000"
    settings = Settings(
        _env_file=None,
        **{k.lower().removeprefix("identity_"): v for k, v in env.items() if k.startswith("IDENTITY_")},
        environment=production["ENVIRONMENT"],
        service_token_secret=made["password"],
    )
    assert settings.is_development is False and settings.sms_provider == "disabled"
    for secret in (made["password"], made["IDENTITY_ADMIN_PASSWORD"]):
        assert len(secret) >= 20 and re.fullmatch(r"[A-Za-z0-9_-]+", secret), "URL-safe, no '$'"

    # contracts: the seal key makes the cipher its service builds at start, the CA pair loads
    # (key and certificate match) and is a CA, and its settings accept the three in production.
    from common.crypto import FieldCipher
    from contracts.config import Settings as ContractsSettings
    from contracts.signing import SigningCA

    assert len(base64.b64decode(made["CONTRACTS_SEAL_KEY_ENCRYPTION_KEY"], validate=True)) == 32
    FieldCipher(made["CONTRACTS_SEAL_KEY_ENCRYPTION_KEY"])
    ca = SigningCA.from_pem(made["CONTRACTS_SIGNING_CA_KEY_PEM"], made["CONTRACTS_SIGNING_CA_CERT_PEM"])
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    contracts = ContractsSettings(
        _env_file=None,
        **{k.lower().removeprefix("contracts_"): v for k, v in made.items() if k.startswith("CONTRACTS_")},
        environment=production["ENVIRONMENT"],
        service_token_secret=made["password"],
    )
    assert contracts.is_development is False
    assert contracts.signing_ca_cert_pem == ca.cert_pem.strip()

    # web: the session secret is long enough for the portal's settings in production, and safe
    # in an env file (no '$' for compose to interpolate, no quotes needed).
    from web.config import Settings as WebSettings

    session_secret = made["WEB_SESSION_SECRET"]
    assert len(session_secret) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", session_secret)
    portal = WebSettings(_env_file=None, session_secret=session_secret, environment=production["ENVIRONMENT"])
    assert portal.is_development is False and portal.secure_cookies is True


def test_real_env_files_stay_out_of_git_and_out_of_images(root: Path, own_secrets: dict[str, Any]) -> None:
    git = shutil.which("git")
    if git is not None:

        def ignored(path: str) -> bool:
            result = subprocess.run(
                [git, "-C", str(root), "check-ignore", "--no-index", "-q", path], check=False
            )
            assert result.returncode in (0, 1), f"git check-ignore failed for {path}"
            return result.returncode == 0

        for secrets in (SECRETS_ENV, *(row.env_file for row in own_secrets.values())):
            assert ignored(secrets), f"{secrets} must be ignored by git"
            assert not ignored(f"{secrets}.example"), f"{secrets}.example must be committed"
        for made in (*INFRA_SECRETS.values(), credentials_env("quota"), credentials_env("gateway")):
            assert ignored(made), f"{made} must be ignored by git"
        assert not ignored(PRODUCTION_ENV)
        assert not ignored(CADDY_ENV)
        assert ignored("deploy/caddy/certs/key.pem"), "a provided certificate's key is never committed"
        assert not ignored(MAKE_CREDENTIALS)
    patterns = (root / ".dockerignore").read_text().split()
    assert "deploy/*" in patterns and "**/*.env" in patterns


def test_interpolated_variables_have_a_default_or_a_message(compose: dict[str, Any]) -> None:
    """Compose substitutes ${VAR} from the shell or a .env file: each one must work unset
    (a default, `:-`) or say what is missing (`:?message`)."""
    undocumented = []
    for text in all_strings(compose):
        for match in re.finditer(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", text):
            token = match.group(1)
            if token == "$":
                continue  # `$$` is a literal dollar
            body = token[1:-1] if token.startswith("{") else token
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(:?-|:?\?).*", body, flags=re.DOTALL):
                undocumented.append(f"${token} in {text!r}")
    assert not undocumented, undocumented


# --- a real Compose implementation, when one is installed --------------------------------------


def _compose_commands() -> list[tuple[list[str], int]]:
    """(command, major version) of each Compose found: the docker CLI plugin, docker-compose."""
    found = []
    candidates = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for command in candidates:
        try:
            result = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=60, check=False
            )
        except OSError:
            continue
        version = re.search(r"(\d+)\.\d+\.\d+", result.stdout)
        if result.returncode == 0 and version:
            found.append((command, int(version.group(1))))
    return found


def test_docker_compose_config_accepts_the_file_and_configures_no_secret(
    root: Path, tmp_path: Path, own_secrets: dict[str, Any], parse_env: Any
) -> None:
    """`docker compose config` over a copy of the deployment whose secrets are the examples
    and make-credentials.py's: it accepts the file, and the configuration it renders (what a
    container is created with, what `docker inspect` shows) has no secret in any service's
    environment, only its secret files. Compose v1 (the Debian package docker-compose 1.29)
    predates the top-level `name`, which is dropped for it. (A secret file missing on the host
    is no error for `config`: Compose v2 refuses to create the container, v1 mounts an empty
    directory, which deploy/entrypoint.sh refuses: test_secret_files.py.)"""
    commands = _compose_commands()
    if not commands:
        if infra.in_ci():  # .ci/run installs Debian's docker-compose
            pytest.fail("no Docker Compose on the CI machine (.ci/run installs it)", pytrace=False)
        pytest.skip("no Docker Compose installed (the schema test above does not need one)")
    shutil.copy(root / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copytree(
        root / "deploy",
        tmp_path / "deploy",
        ignore=shutil.ignore_patterns("secrets.env", "*.secrets.env", "*.credentials.env"),
    )
    for name in (SECRETS_ENV, *(row.env_file for row in own_secrets.values())):
        shutil.copy(root / f"{name}.example", tmp_path / name)
    subprocess.run(
        [sys.executable, str(root / MAKE_CREDENTIALS), "--dir", str(tmp_path / "deploy/env")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    secret_values: dict[str, str] = {}
    for path in (tmp_path / "deploy/env").glob("*.env"):
        if path.name not in (Path(PRODUCTION_ENV).name, Path(CADDY_ENV).name):
            secret_values.update(parse_env(path))
    for command, major in commands:
        compose_file = tmp_path / "docker-compose.yml"
        if major < 2:
            doc = yaml.safe_load((root / "docker-compose.yml").read_text())
            doc.pop("name", None)
            compose_file = tmp_path / "docker-compose.v1.yml"
            compose_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        result = subprocess.run(
            [*command, "-f", str(compose_file), "--project-directory", str(tmp_path), "config"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, f"{command} (v{major}): {result.stderr}"
        rendered = yaml.safe_load(result.stdout)
        for name, service in rendered["services"].items():
            env = environment_of(service)
            values = [v for v in env.values() if v]
            assert not [v for v in secret_values.values() if v in values], f"{name}: a secret value"
            if service.get("build", {}).get("args", {}).get("SERVICE"):
                leaked = sorted(env.keys() & secret_values.keys())
                assert not leaked, f"{command} (v{major}): {name}'s configuration holds {leaked}"
                assert service.get("secrets"), f"{name}: no secret file"
                for secret in service["secrets"]:
                    source = secret["source"] if isinstance(secret, dict) else secret
                    assert Path(rendered["secrets"][source]["file"]).is_file(), source
