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
