"""The launcher runs what the environment says, and nothing more (issue 6, finding 2):
``ENVIRONMENT`` unset is production in both modes, all-in-one binds where ``--host`` says
(127.0.0.1 by default), and the production banner advertises no development helper."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from common import registry
from gateway import launcher


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    for svc in registry.SERVICES:
        monkeypatch.delenv(f"{svc.env_prefix}SEED_DEMO", raising=False)
    # allinone() writes these into os.environ: set them here so they are restored afterwards.
    monkeypatch.setenv("POSTGRES_URL", "postgresql://postgres@127.0.0.1:9/none")
    monkeypatch.setenv("BUS_TRANSPORT", "rabbitmq")
    monkeypatch.setenv("IDENTITY_STORAGE_URL", "/tmp/unused")
    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(signal, "signal", lambda *_a: previous)
    return monkeypatch


def test_allinone_without_environment_is_production_on_loopback(clean_env: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def fake_allinone(host: str, port: int) -> None:
        import os

        seen.update(host=host, port=port, env=dict(os.environ))

    clean_env.setattr(launcher, "_allinone", fake_allinone)
    assert launcher.main(["allinone", "--port", "8123"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert "ENVIRONMENT" not in seen["env"]
    assert not [k for k in seen["env"] if k.endswith("_SEED_DEMO")]


def test_allinone_binds_where_host_says(clean_env: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def fake_allinone(host: str, port: int) -> None:
        seen["host"] = host

    clean_env.setattr(launcher, "_allinone", fake_allinone)
    launcher.main(["allinone", "--host", "192.0.2.1"])
    assert seen["host"] == "192.0.2.1"


def test_up_without_environment_starts_every_service_in_production(clean_env: pytest.MonkeyPatch) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []

    class Refused:
        def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
            started.append((cmd, env))
            raise RuntimeError("not in this test")

    clean_env.setattr(launcher.subprocess, "Popen", Refused)
    assert launcher.main(["up"]) == 1
    (cmd, env), *_ = started
    assert "ENVIRONMENT" not in env and not [k for k in env if k.endswith("_SEED_DEMO")]
    assert "--no-proxy-headers" in cmd and "--no-server-header" in cmd


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_production_banner_advertises_no_development_helper(host: str) -> None:
    banner = launcher._banner(8000, host, development=False)
    assert "/dev" not in banner and "password" not in banner.lower()
    assert "http://127.0.0.1:8000" in banner
    development = launcher._banner(8000, host, development=True)
    assert "/dev/captcha" in development


def test_the_banner_advertises_docs_only_where_they_are_open() -> None:
    """Production closes /docs (and /openapi.json) unless PUBLIC_DOCS=true: a banner that
    shows the link sends the operator to a 404."""
    assert "/docs" not in launcher._banner(8000, "127.0.0.1", development=False)
    assert "/api/v1" in launcher._banner(8000, "127.0.0.1", development=False)
    assert "/docs" in launcher._banner(8000, "127.0.0.1", development=False, docs=True)
    assert "/docs" in launcher._banner(8000, "127.0.0.1", development=True)
    assert launcher._docs_open({"ENVIRONMENT": "development"})
    assert launcher._docs_open({"PUBLIC_DOCS": "true"})
    assert not launcher._docs_open({})
    assert not launcher._docs_open({"PUBLIC_DOCS": "false", "ENVIRONMENT": "production"})
