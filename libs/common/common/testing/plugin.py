"""pytest plugin (``-p common.testing.plugin``): real servers and per-test namespaces.

- ``postgres_server``: a PostgreSQL server URL (see :mod:`common.testing.infra`);
- ``fresh_db``: a factory of new databases on it, dropped after the test (in the background:
  :mod:`common.testing.dropping`): empty, or with
  ``schema="orders"`` a copy of a template migrated once to that service's head (see
  :func:`template`);
- ``amqp_url``: a RabbitMQ URL; with none, the test is skipped (and listed loudly at the end)
  or, under ``CI=true``, FAILS;
- ``rabbit``: a per-test exchange and queue prefix on that broker, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from common import registry
from common.db import connect, migrate
from common.settings import database_in
from common.testing import infra
from common.testing.dropping import dropper
from common.testing.infra import MakeDb
from common.testing.rabbit import RabbitNamespace
from common.testing.saga import saga, saga_broker  # noqa: F401 - plugin fixtures

_broker_skips: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "broker: needs RabbitMQ")
    # A problem a route answers in the tests but does not document fails the run.
    if not config.pluginmanager.has_plugin("common.testing.problem_docs"):
        config.pluginmanager.import_plugin("common.testing.problem_docs")


# Fixtures that start the whole platform (nine processes): a test using one waits for one of
# the two platform slots (common.testing.platform), which the long tests (the saga fault test,
# the restore drill) hold for minutes, then for the start itself; on a busy two-core machine
# that is longer than the suite's default 120 s timeout, which counts the fixtures' setup.
PLATFORM_FIXTURES = {"platform", "portal"}
PLATFORM_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first (a stable sort: the rest keep their order), so xdist starts
    them while the other workers take the short ones, instead of finishing the run alone; a
    test that starts the platform, without a timeout of its own, gets ``PLATFORM_TIMEOUT``."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    for item in items:
        uses = PLATFORM_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PLATFORM_TIMEOUT))


def pytest_unconfigure(config: pytest.Config) -> None:
    dropper.flush()
    infra.stop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _broker_skips:
        tr = terminalreporter
        tr.section("NO RABBITMQ: broker tests did not run", sep="!", red=True, bold=True)
        tr.line(f"{len(_broker_skips)} test(s) skipped because no RabbitMQ could be found.", red=True)
        tr.line("Start one (rabbitmq-server -detached) or set AMQP_URL; under CI=true these FAIL.", red=True)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url, source = infra.find_postgres()
    print(f"\n[tests] PostgreSQL from {source}")
    return url


@pytest.fixture(scope="session")
def amqp_url_or_none() -> str | None:
    url, source = infra.find_rabbitmq()
    print(f"\n[tests] RabbitMQ from {source}")
    return url


def require_broker(url: str | None, request: pytest.FixtureRequest) -> str:
    """The broker URL; without one the test FAILS under CI=true, else is skipped (and listed
    loudly at the end of the run)."""
    if url is None:
        message = "no RabbitMQ: set AMQP_URL, start one on 127.0.0.1:5672, or provide a Docker engine"
        if infra.in_ci():
            pytest.fail(f"{message} (CI=true: broker tests must run)", pytrace=False)
        _broker_skips.append(request.node.nodeid)
        pytest.skip(message)
    return url


@pytest.fixture
def amqp_url(amqp_url_or_none: str | None, request: pytest.FixtureRequest) -> str:
    return require_broker(amqp_url_or_none, request)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def migrations_of(schema: str) -> Path:
    """The migrations folder of a service (or the gateway) named ``schema``."""
    package = registry.service(schema).package if schema in registry.NAMES else schema
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(f"no package {package!r} for schema {schema!r}")
    return Path(spec.origin).parent / "migrations"


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".py", ".mako"}):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_templates: dict[str, str] = {}
# alembic keeps its migration context in module globals: two runs at once in one process (a
# harness making seven databases together) would mix them up. One build at a time per loop.
_building: dict[int, asyncio.Lock] = {}


async def template(server: str, schema: str) -> str:
    """A database migrated to ``schema``'s head, made once and then copied by every test that
    starts that service: ``CREATE DATABASE … TEMPLATE`` copies it in a fraction of the time
    alembic takes to run every migration again (about 1-5 s per service on a busy two-core
    machine, for hundreds of service starts in ``make test``). Its name carries a hash of the
    migrations, so a changed migration makes a new template; xdist workers and concurrent
    runs build each one once (an advisory lock) and publish it by a rename."""
    folder = migrations_of(schema)
    name = f"tmpl_{schema}_{_fingerprint(folder)}"
    if name in _templates:
        return name
    async with _building.setdefault(id(asyncio.get_running_loop()), asyncio.Lock()):
        if name not in _templates:
            await _build(server, folder, name)
            _templates[name] = name
    return name


async def _build(server: str, folder: Path, name: str) -> None:
    conn = await connect(database_in(server, "postgres"))
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                scratch = f"{name}_build"
                await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{scratch}"')
                await migrate(folder, database_in(server, scratch))
                await conn.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{name}"')
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
    finally:
        await conn.close()


@asynccontextmanager
async def databases(postgres_server: str) -> AsyncIterator[MakeDb]:
    made: list[str] = []

    async def make(hint: str = "t", *, schema: str | None = None) -> str:
        name = unique(f"t_{hint}")[:60]
        source = f' TEMPLATE "{await template(postgres_server, schema)}"' if schema else ""
        conn = await connect(database_in(postgres_server, "postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"{source}')
        finally:
            await conn.close()
        made.append(name)
        return database_in(postgres_server, name)

    yield make
    for name in made:
        dropper.drop(postgres_server, name)


@asynccontextmanager
async def _namespace(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    tag = uuid.uuid4().hex[:10]
    ns = RabbitNamespace(url=amqp_url, exchange=f"test.{tag}.events", prefix=f"test.{tag}.")
    yield ns
    for t in ns.transports:
        try:
            await t.stop()
        except Exception:  # noqa: BLE001
            pass
    await ns.cleanup()


@pytest_asyncio.fixture
async def fresh_db(postgres_server: str) -> AsyncIterator[MakeDb]:
    """``url = await fresh_db("identity")``: a new empty database, dropped after the test."""
    async with databases(postgres_server) as make:
        yield make


@pytest_asyncio.fixture
async def rabbit(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    async with _namespace(amqp_url) as ns:
        yield ns


# The same for a whole module (tests/portal: one platform serves every page test of a module).
@pytest_asyncio.fixture(scope="module")
async def module_fresh_db(postgres_server: str) -> AsyncIterator[MakeDb]:
    async with databases(postgres_server) as make:
        yield make


@pytest_asyncio.fixture(scope="module")
async def module_rabbit(
    amqp_url_or_none: str | None, request: pytest.FixtureRequest
) -> AsyncIterator[RabbitNamespace]:
    async with _namespace(require_broker(amqp_url_or_none, request)) as ns:
        yield ns
