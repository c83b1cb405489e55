"""Settings: the shared variables, database URLs, and production refusing development defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import DEV_SERVICE_TOKEN_SECRET, ServiceSettings, database_in, to_asyncpg_url


class Demo(ServiceSettings):
    service_name = "quota"


def test_each_service_gets_its_own_database_on_the_shared_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("POSTGRES_URL", "postgresql://u:p@db:5432")
    assert Demo().db_url == "postgresql+asyncpg://u:p@db:5432/quota"
    monkeypatch.setenv("DATABASE_URL", "postgresql://ignored@x/y")  # no prefix: not ours
    assert Demo(database_url="postgres://a@b/c").db_url == "postgresql+asyncpg://a@b/c"


def test_unix_socket_urls_survive() -> None:
    assert (
        database_in("postgresql://postgres@?host=/tmp/sock", "identity")
        == "postgresql://postgres@/identity?host=/tmp/sock"
    )
    with pytest.raises(ValueError):
        to_asyncpg_url("mysql://x")


def test_production_needs_a_real_service_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVICE_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SERVICE_TOKEN_SECRET"):
        Demo()
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", DEV_SERVICE_TOKEN_SECRET)
    with pytest.raises(ValidationError, match="development"):
        Demo()
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", "a-real-secret-of-enough-length-0123456789")
    assert Demo().is_development is False


def test_unset_environment_means_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", "a-real-secret-of-enough-length-0123456789")
    assert Demo().environment == "production"


SECRET = "Hunter2-s3cret-in-the-url"


def _every_settings() -> list[type]:
    import importlib

    from common import registry
    from gateway.config import Settings as GatewaySettings
    from web.config import Settings as WebSettings

    services = [importlib.import_module(f"{svc.package}.config").Settings for svc in registry.SERVICES]
    return [*services, GatewaySettings, WebSettings]


@pytest.mark.parametrize("settings", _every_settings(), ids=lambda s: s.__module__)
def test_a_refused_production_start_names_the_settings_and_never_shows_their_values(
    settings: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic prints the whole input of a refused model (every setting read from the
    environment, passwords in URLs among them) in the message a failed start logs."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AMQP_URL", f"amqp://voucher:{SECRET}@mq:5672/")
    monkeypatch.setenv("POSTGRES_URL", f"postgresql://voucher:{SECRET}@db:5432")
    monkeypatch.delenv("SERVICE_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("WEB_SESSION_SECRET", "short")
    monkeypatch.setenv("WEB_API_TIMEOUT", f"not-a-number-{SECRET}")
    with pytest.raises(ValidationError) as refused:
        settings()
    shown = f"{refused.value}\n{refused.value!r}"
    assert "input_value" not in shown  # pydantic shortens a long input, but shows its ends
    assert not any(part in shown for part in ("Hunter2", "s3cret", "in-the-url", "voucher:"))
    assert "SECRET" in shown or "api_timeout" in shown  # which setting is wrong


def test_a_refused_production_start_of_a_real_service_process_prints_no_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("ENVIRONMENT", "SERVICE_TOKEN_SECRET")} | {
        "AMQP_URL": f"amqp://voucher:{SECRET}@127.0.0.1:1/",
        "ENVIRONMENT": "production",
    }
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "identity.main:create_app", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SERVICE_TOKEN_SECRET" in done.stderr
    printed = done.stderr + done.stdout
    assert "input_value" not in printed
    assert not any(part in printed for part in ("Hunter2", "s3cret", "in-the-url", "voucher:"))
