"""Fixtures of the bus suite: the transport under test (RabbitMQ and in-process), a started
publisher + consumer pair on fresh databases, plain databases with the common tables.
The world they build is :mod:`common.testing.bus`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from common.bus.consumer import REDELIVER_TIMER
from common.bus.inprocess import InProcessTransport
from common.bus.rabbitmq import RabbitTransport
from common.bus.transport import Transport
from common.db import Database
from common.logging import configure_logging
from common.testing.bus import FAST, Bus, Eventually, Ledger, MakeBus, MakeDb, make_schema, wait_until
from common.testing.rabbit import RabbitNamespace
from common.timers import TimerWorker


@pytest.fixture(autouse=True)
def service_logging() -> None:
    """Log as the services do (plain tracebacks, on stderr). Unconfigured, structlog renders
    every traceback with rich and its locals: seconds of CPU each, which starves the event
    loop when a worker logs one per poll during an outage."""
    configure_logging("INFO", json=False, stream=sys.stderr)


@pytest.fixture
def eventually() -> Eventually:
    return wait_until


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus_broker(transport_kind: str, request: pytest.FixtureRequest) -> RabbitNamespace | None:
    """The per-test RabbitMQ namespace when the transport is RabbitMQ (so such a test FAILS
    under CI=true without a broker), else nothing."""
    if transport_kind == "rabbitmq":
        return request.getfixturevalue("rabbit")
    return None


@pytest_asyncio.fixture
async def make_bus(
    transport_kind: str, bus_broker: RabbitNamespace | None, fresh_db: Callable[[str], Awaitable[str]]
) -> AsyncIterator[MakeBus]:
    """``bus = await make_bus(retry_delays=..., amqp_url=..., consumer_url_hook=...)``, started.

    ``amqp_url`` points the RabbitMQ transport elsewhere than the broker itself, and
    ``consumer_url_hook`` turns the consumer's database URL into another (both e.g. through a
    :class:`~common.testing.proxy.TcpProxy`).
    """
    made: list[Bus] = []

    async def make(
        *,
        retry_delays: list[float] | None = None,
        amqp_url: str | None = None,
        publish_timeout: float = 2.0,
        consumer_url_hook: Callable[[str], str] | None = None,
    ) -> Bus:
        delays = list(retry_delays or FAST)
        transport: Transport
        if bus_broker is None:
            transport = InProcessTransport(retry_delays=delays)
        elif amqp_url is None:
            transport = bus_broker.transport(retry_delays=delays, publish_timeout=publish_timeout)
        else:
            transport = RabbitTransport(
                amqp_url,
                exchange=bus_broker.exchange,
                queue_prefix=bus_broker.prefix,
                retry_delays=delays,
                publish_timeout=publish_timeout,
                connect_timeout=10,
            )
            bus_broker.transports.append(transport)

        # One fresh database holds both services' tables (the publisher's outbox, the
        # ledger's inbox, timers and effects): creating a database is the slowest step of a
        # test, and nothing here depends on the two living apart. The broker connection is
        # made meanwhile.
        async def database() -> str:
            url = await fresh_db("bus")
            setup = Database(url, pool_size=1)
            await make_schema(setup)
            await setup.dispose()
            return url

        url, _ = await asyncio.gather(database(), transport.start())
        publisher_db = Database(url, pool_size=4)
        consumer_db = Database(consumer_url_hook(url) if consumer_url_hook else url, pool_size=4)
        consumer = Ledger(consumer_db)
        timers = TimerWorker(
            consumer_db, {REDELIVER_TIMER: consumer.redeliver}, retry_delays=delays, poll_interval=0.02
        )
        bus = Bus(transport_kind, transport, publisher_db, consumer_db, consumer, timers, bus_broker, delays)
        made.append(bus)
        return await bus.start()

    yield make
    for bus in reversed(made):
        await bus.close()


@pytest_asyncio.fixture
async def bus(make_bus: MakeBus) -> Bus:
    return await make_bus()


@pytest_asyncio.fixture
async def schema_db(fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[MakeDb]:
    """``db = await schema_db()``: a fresh database with the common tables and ``applied``."""
    made: list[Database] = []

    async def make() -> Database:
        db = Database(await fresh_db("svc"), pool_size=4)
        await make_schema(db)
        made.append(db)
        return db

    yield make
    for db in made:
        await db.dispose()
