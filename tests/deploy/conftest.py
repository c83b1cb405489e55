"""Shared fixtures of the deployment tests: the files under deploy/, docker-compose.yml and
the workspace they deploy. No Docker engine is needed: the files are parsed and checked."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# The process contract: every service, the portal and the gateway, and the port each listens on.
PORTS = {
    "gateway": 8000,
    "identity": 8001,
    "quota": 8002,
    "catalog": 8003,
    "orders": 8004,
    "contracts": 8005,
    "payments": 8006,
    "demands": 8007,
    "web": 8008,
}
# The portal (common.registry.PORTAL): deployed like a service, but it owns no database and no
# broker, holds none of the shared secrets and is not one of the gateway's upstreams.
PORTAL = "web"


@dataclass(frozen=True)
class OwnSecrets:
    """The secrets one service holds alone, beyond the shared ones of secrets.env."""

    service: str
    variables: frozenset[str]
    # Those it starts without in production (it then goes without what they enable).
    optional: frozenset[str] = frozenset()

    @property
    def env_file(self) -> str:
        """The file docker-compose.yml gives this service alone (made from `example`)."""
        return f"deploy/env/{self.service}.secrets.env"

    @property
    def secret(self) -> str:
        """Its compose secret (named after the file), /run/secrets/<name> in its container."""
        return Path(self.env_file).name

    @property
    def example(self) -> str:
        return f"{self.env_file}.example"

    @property
    def k8s_secret(self) -> str:
        """The Secret its Deployment alone reads (made as deploy/README.md says)."""
        return f"voucher-{self.service}-secrets"

    @property
    def required(self) -> frozenset[str]:
        return self.variables - self.optional


# Which services have secrets of their own, and which. test_registry.py holds this table to
# each service's settings: with these and the shared secrets a service starts in production,
# without any required one it refuses to, and a service not listed starts on the shared
# secrets alone. test_compose.py and test_k8s.py check that each listed service, and no
# other, gets its secret file and its Secret.
OWN_SECRETS: dict[str, OwnSecrets] = {
    row.service: row
    for row in (
        OwnSecrets(
            "identity",
            frozenset(
                {
                    "IDENTITY_JWT_PRIVATE_KEY",
                    "IDENTITY_FIELD_ENCRYPTION_KEY",
                    "IDENTITY_HASH_KEY",
                    "IDENTITY_ADMIN_PHONE",
                    "IDENTITY_ADMIN_PASSWORD",
                }
            ),
            # The first administrator is created at start only when both are given.
            optional=frozenset({"IDENTITY_ADMIN_PHONE", "IDENTITY_ADMIN_PASSWORD"}),
        ),
        OwnSecrets(
            "contracts",
            frozenset(
                {
                    "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY",
                    "CONTRACTS_SIGNING_CA_KEY_PEM",
                    "CONTRACTS_SIGNING_CA_CERT_PEM",
                }
            ),
        ),
        # The portal's session secret (it seals the session cookies).
        OwnSecrets(PORTAL, frozenset({"WEB_SESSION_SECRET"})),
    )
}

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def parse_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a compose env file, as compose reads them (quotes removed,
    escapes of double-quoted values applied, comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert match, f"{path.name}:{number}: not a KEY=VALUE line: {raw!r}"
        key, value = match.groups()
        if value.startswith('"'):
            end = value.rindex('"')
            assert end > 0, f"{path.name}:{number}: unclosed double quote"
            value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value[1:end])
        elif value.startswith("'"):
            value = value[1 : value.rindex("'")]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        assert key not in values, f"{path.name}:{number}: {key} is set twice"
        values[key] = value
    return values


def release_version() -> str:
    """The platform's version, the one source of every image tag: the root pyproject.toml's
    ``version`` (deploy/k8s/release, docker-compose.yml and `make images` follow it)."""
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def workspace_services() -> list[str]:
    """Every service directory of the workspace (services/<name>/pyproject.toml)."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def version() -> str:
    return release_version()


@pytest.fixture(scope="session")
def ports() -> dict[str, int]:
    return dict(PORTS)


@pytest.fixture(scope="session")
def portal() -> str:
    """The portal's name: its compose service, Deployment, image voucher-<name>, SERVICE."""
    return PORTAL


@pytest.fixture(scope="session")
def services_in_workspace() -> list[str]:
    return workspace_services()


@pytest.fixture(scope="session")
def parse_env() -> Callable[[Path], dict[str, str]]:
    return parse_env_file


@pytest.fixture(scope="session")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def compose(compose_text: str) -> dict[str, Any]:
    doc = yaml.safe_load(compose_text)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="session")
def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from deploy/Dockerfile, keyed by their SERVICE build argument."""
    found: dict[str, dict[str, Any]] = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        assert isinstance(build, dict), f"{name}: build must be the long form (context, dockerfile, args)"
        if build.get("dockerfile") == "deploy/backup/Dockerfile":
            continue  # the backup service (deploy/backup): no process of the suite
        args = build.get("args") or {}
        assert name == args.get("SERVICE"), f"compose service {name} builds SERVICE={args.get('SERVICE')}"
        found[name] = service
    return found


@pytest.fixture(scope="session")
def production_env() -> dict[str, str]:
    return parse_env_file(ROOT / "deploy/env/production.env")


@pytest.fixture(scope="session")
def shared_secrets() -> dict[str, str]:
    return parse_env_file(ROOT / "deploy/env/secrets.env.example")


@pytest.fixture(scope="session")
def own_secrets() -> dict[str, OwnSecrets]:
    """OWN_SECRETS: service -> the secrets it holds alone (its env file, its Secret)."""
    return dict(OWN_SECRETS)


@pytest.fixture(scope="session")
def own_secret_examples() -> dict[str, dict[str, str]]:
    """service -> its deploy/env/<service>.secrets.env.example, parsed."""
    return {name: parse_env_file(ROOT / row.example) for name, row in OWN_SECRETS.items()}


def generation_commands(path: Path) -> list[list[str]]:
    """The commands an env example documents, as comment lines `#   python3 -c "..."`,
    `#   .venv/bin/python -c "..."` or `#   .venv/bin/voucher-<service> ...` (a console
    script of the workspace), each as argv to run here."""
    commands = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#\s+((?:\.venv/bin/python|python3) -c .*|\.venv/bin/voucher-[a-z]+ .*)$", line)
        if not match:
            continue
        argv = shlex.split(match.group(1))
        if argv[0].startswith(".venv/bin/voucher-"):
            script = shutil.which(Path(argv[0]).name, path=str(Path(sys.executable).parent))
            assert script, f"{path.name} names {argv[0]}, which is not installed next to {sys.executable}"
            commands.append([script, *argv[1:]])
        else:
            commands.append([sys.executable, *argv[1:]])
    return commands


@pytest.fixture(scope="session")
def documented_secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Example file name -> what its documented commands make: the KEY=VALUE lines they print
    (read as compose reads them), and "password" for the first bare value printed."""
    tmp = tmp_path_factory.mktemp("documented-secrets")
    made: dict[str, dict[str, str]] = {}
    examples = [ROOT / "deploy/env/secrets.env.example", *(ROOT / r.example for r in OWN_SECRETS.values())]
    for example in examples:
        values: dict[str, str] = {}
        for argv in generation_commands(example):
            output = subprocess.run(
                argv, capture_output=True, text=True, check=True, timeout=60
            ).stdout.strip()
            if re.match(r"[A-Z_]+=", output):
                lines = tmp / "lines.env"
                lines.write_text(output + "\n")
                values.update(parse_env_file(lines))
            else:
                values.setdefault("password", output)
        made[example.name] = values
    return made


@pytest.fixture(scope="session")
def definitions() -> dict[str, Any]:
    import json

    return json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text(encoding="utf-8"))
