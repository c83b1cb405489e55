"""Shared fixtures of the deployment tests: the files under deploy/, docker-compose.yml and
the workspace they deploy. No Docker engine is needed: the files are parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# The process contract: every service and the gateway, and the port each listens on.
PORTS = {
    "gateway": 8000,
    "identity": 8001,
    "quota": 8002,
    "catalog": 8003,
    "orders": 8004,
    "contracts": 8005,
    "payments": 8006,
    "demands": 8007,
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


def workspace_services() -> list[str]:
    """Every service directory of the workspace (services/<name>/pyproject.toml)."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ports() -> dict[str, int]:
    return dict(PORTS)


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
def identity_secrets() -> dict[str, str]:
    return parse_env_file(ROOT / "deploy/env/identity.secrets.env.example")


@pytest.fixture(scope="session")
def definitions() -> dict[str, Any]:
    import json

    return json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text(encoding="utf-8"))
