"""The saga test harness: several services' real runtimes (database, inbox consumer, outbox
relay, timers), each on a fresh database, joined by the real broker (a per-test exchange and
queue prefix) or by the in-process transport, with helpers to deliver an event twice, out
of order, or to crash a handler between two statements.

    @pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
    def transport_kind(request): return request.param

    async def test_reservation_rejected_cancels_the_order(saga):      # fixture from saga_fixture
        h = await saga("quota", "orders")
        orders = h.client("orders")                                   # httpx, in-process ASGI
        r = await orders.post("/api/v1/orders", json=..., headers=h.issuer.member(...).headers)
        await h.settle()
        ...
        doc = await h.publish(VoucherReserved(...), aggregate_id=order_id, sequence=2)
        await h.redeliver(doc)                                       # a duplicate delivery
        h.crash("quota", "orders.order_submitted", after_statements=2)  # one-shot
        await h.settle()
        h.hold("quota", "consumer")            # lag: quota applies nothing until released
        h.hold("orders", "relay")              # lag: orders' outbox publishes nothing
        await h.settle()                        # settles the rest, not what is held
        h.release_all()

The ``saga`` fixture is a plugin fixture (``-p common.testing.plugin``). Services are started with
``ENVIRONMENT=development``, fast retries (0.05/0.1/0.2 s) and fast polling; ``start(...,
overrides={"orders": {...settings...}})`` changes any setting; ``peers`` adds fake services
(an ASGI app answering another service's /internal/ endpoints, e.g. :func:`fake_identity`).

Lag (:meth:`SagaHarness.hold`): a service's ``"relay"`` held publishes nothing (its outbox
rows stay pending); its ``"consumer"`` held applies nothing: on RabbitMQ its deliveries wait
unacknowledged (and the rest in its queue), in-process each one is kept as a durable
redelivery in its own database that its timer worker leaves alone until the release. Nothing
is lost either way, and :meth:`SagaHarness.settle` settles the rest while a part is held.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, HTTPException, Request, Response
from sqlalchemy import text

from common import registry
from common.app import ServiceRuntime
from common.bus.consumer import REDELIVER_TIMER
from common.bus.inprocess import InProcessTransport
from common.bus.rabbitmq import RabbitTransport, retry_queue
from common.bus.transport import Transport
from common.db import Database
from common.events import Envelope, EventPayload
from common.testing.bus import wait_until
from common.testing.infra import MakeDb
from common.testing.rabbit import RabbitNamespace
from common.testing.tokens import TestIssuer

FAST_RETRIES = [0.05, 0.1, 0.2]

Part = Literal["relay", "consumer"]
PARTS: tuple[Part, ...] = ("relay", "consumer")


class _TimerKinds(dict[str, Any]):
    """A timer worker's handlers, some kinds set aside: the worker takes only the kinds it
    iterates (``sorted(handlers)``), so timers of a set-aside kind wait in the table, due,
    until the kind is back. A timer already taken still finds its handler."""

    def __init__(self, handlers: dict[str, Any]) -> None:
        super().__init__(handlers)
        self.aside: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        return (k for k in list(dict.__iter__(self)) if k not in self.aside)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Crash(Exception):
    """What an injected crash raises: the handler's transaction rolls back, as if the process
    had died between two statements, and the event is delivered again."""


@dataclass
class Running:
    name: str
    app: FastAPI
    runtime: ServiceRuntime
    client: httpx.AsyncClient

    @property
    def db(self) -> Database:
        return self.runtime.db


@dataclass
class SagaHarness:
    kind: str  # rabbitmq | inprocess
    fresh_db: MakeDb
    rabbit: RabbitNamespace | None
    issuer: TestIssuer = field(default_factory=TestIssuer)
    services: dict[str, Running] = field(default_factory=dict)
    peers: dict[str, Any] = field(default_factory=dict)
    transport: Transport | None = None  # the shared in-process transport, or a publisher's
    crashes: dict[tuple[str, str], int] = field(default_factory=dict)
    held: set[tuple[str, str]] = field(default_factory=set)  # (service, part) held back
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)  # a consumer's: set = open

    # --- starting -----------------------------------------------------------------------------

    async def start(
        self,
        *names: str,
        overrides: dict[str, dict[str, Any]] | None = None,
        peers: dict[str, Any] | None = None,
        pool_size: int | None = None,
    ) -> SagaHarness:
        """``pool_size`` caps each service's connection pool (its writers: that many plus as
        many again at a peak): a harness driving many orders at once keeps within the
        server's connection budget, which the other tests share."""
        overrides = overrides or {}
        self.peers.update(peers or {})
        for peer in self.peers.values():
            if getattr(getattr(peer, "state", None), "fake_identity", False):
                peer.state.issuer = self.issuer  # the fake identity knows what it signed
        if self.kind == "inprocess":
            self.transport = InProcessTransport(retry_delays=FAST_RETRIES)
            await self.transport.start()
        else:
            assert self.rabbit is not None
            self.transport = self.rabbit.transport(retry_delays=FAST_RETRIES, publish_timeout=5.0)
            await self.transport.start()
            self.rabbit.services.extend(names)
        urls = await asyncio.gather(*(self.fresh_db(f"saga_{n}", schema=n) for n in names))
        made: list[Running] = []
        for name, url in zip(names, urls, strict=True):
            spec = registry.service(name)
            settings_cls = importlib.import_module(f"{spec.package}.config").Settings
            values: dict[str, Any] = {
                "environment": "development",
                "database_url": url,
                "bus_transport": self.kind,
                "bus_retry_delays": FAST_RETRIES,
                "outbox_poll_interval": 0.05,
                "timer_poll_interval": 0.05,
                "revocation_poll_interval": 0.05,
            }
            if self.rabbit is not None:
                values.update(
                    amqp_url=self.rabbit.url,
                    bus_exchange=self.rabbit.exchange,
                    bus_queue_prefix=self.rabbit.prefix,
                )
            values.update(overrides.get(name, {}))
            settings = settings_cls(**values)
            module, _, factory = spec.app.partition(":")
            app = getattr(importlib.import_module(module), factory)(
                settings,
                transport=self.transport if self.kind == "inprocess" else None,
                key_set=self.issuer.keys,
                peers=self.peers,
            )
            self.peers[name] = app
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 0)), base_url=f"http://{name}"
            )
            running = Running(name, app, app.state.runtime, client)
            if pool_size is not None:  # no connection is made before prepare()
                db = running.runtime.db
                await db.dispose()
                db.__init__(db.url, pool_size=pool_size, echo=db.echo)  # type: ignore[misc]
            self.services[name] = running
            made.append(running)
        for running in made:
            await running.runtime.prepare()
        for running in made:
            self._arm(running)
            await running.runtime.begin()
        return self

    def __getitem__(self, name: str) -> Running:
        return self.services[name]

    def client(self, name: str) -> httpx.AsyncClient:
        return self.services[name].client

    def db(self, name: str) -> Database:
        return self.services[name].db

    async def close(self) -> None:
        self.release_all()  # a held delivery waiting on RabbitMQ would hold up the stop
        for running in reversed(list(self.services.values())):
            await running.client.aclose()
            try:
                await running.runtime.stop()
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
        if self.transport is not None:
            await self.transport.stop()

    # --- events from outside -----------------------------------------------------------------

    async def publish(
        self,
        payload: EventPayload,
        *,
        aggregate_id: str,
        sequence: int = 1,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Deliver an event as another service's relay would (with the sequence given, and
        the moment it happened there: now unless given), bypassing any outbox; returns its
        document for :meth:`redeliver`."""
        envelope = Envelope.wrap(payload, aggregate_id=aggregate_id, event_id=event_id or str(uuid.uuid4()))
        doc = envelope.to_json()
        doc["sequence"] = sequence
        if occurred_at is not None:
            doc["occurred_at"] = occurred_at.isoformat()
        await self.redeliver(doc)
        return doc

    async def redeliver(self, doc: dict[str, Any]) -> None:
        """The same event once more (at-least-once delivery)."""
        assert self.transport is not None
        await self.transport.publish(json.loads(json.dumps(doc)))

    # --- faults ------------------------------------------------------------------------------

    def crash(self, service: str, event_type: str, *, after_statements: int = 1) -> None:
        """The next time ``service`` handles ``event_type``, fail after that many statements
        (its transaction rolls back; the event comes again). One-shot."""
        self.crashes[(service, event_type)] = after_statements

    def _arm(self, running: Running) -> None:
        self._holdable(running)
        consumer = running.runtime.consumer
        if consumer is None:
            return
        for event_type, handler in list(consumer.handlers.items()):
            consumer.handlers[event_type] = self._crashable(running.name, event_type, handler)

    def _crashable(self, service: str, event_type: str, handler: Any) -> Any:
        async def run(session: Any, event: Any) -> None:
            after = self.crashes.pop((service, event_type), None)
            if after is None:
                await handler(session, event)
                return
            count = 0
            real_execute, real_exec = session.execute, session.exec

            def counted(real: Any) -> Any:
                async def call(*args: Any, **kwargs: Any) -> Any:
                    nonlocal count
                    count += 1
                    if count > after:
                        raise Crash(f"{service} crashed in {event_type} after {after} statement(s)")
                    return await real(*args, **kwargs)

                return call

            session.execute, session.exec = counted(real_execute), counted(real_exec)
            try:
                await handler(session, event)
                if count <= after:  # the handler ended first: crash at its end instead
                    raise Crash(f"{service} crashed at the end of {event_type}")
            finally:
                session.execute, session.exec = real_execute, real_exec

        return run

    # --- lag ---------------------------------------------------------------------------------

    def hold(self, service: str, part: Part) -> None:
        """Hold ``service``'s ``part`` back from now on, until :meth:`release`: its relay
        publishes nothing (its outbox rows stay pending), or its consumer applies nothing
        (deliveries wait: unacknowledged on RabbitMQ, kept as durable redeliveries in its own
        database in-process). Work already under way finishes. :meth:`settle` settles the
        rest and does not wait for what is held."""
        if part not in PARTS:
            raise ValueError(f"a service's part is one of {PARTS}, not {part!r}")
        running = self.services[service]
        self.held.add((service, part))
        if part == "consumer":
            self._gates[service].clear()
            timers = running.runtime.timers.handlers
            assert isinstance(timers, _TimerKinds)
            timers.aside.add(REDELIVER_TIMER)

    def release(self, service: str, part: Part | None = None) -> None:
        """Let ``service``'s part (both when None) go on: what waited is published or applied."""
        running = self.services[service]
        for p in PARTS if part is None else (part,):
            self.held.discard((service, p))
            if p == "consumer":
                timers = running.runtime.timers.handlers
                assert isinstance(timers, _TimerKinds)
                timers.aside.discard(REDELIVER_TIMER)
                self._gates[service].set()
                running.runtime.timers.nudge()
            else:
                running.runtime.relay.nudge()

    def release_all(self) -> None:
        for service, part in sorted(self.held):
            self.release(service, part)  # type: ignore[arg-type]

    def holding(self, service: str, part: Part) -> bool:
        return (service, part) in self.held

    def _holdable(self, running: Running) -> None:
        """Wrap the relay's round and the consumer's delivery with the hold switches."""
        name, runtime = running.name, running.runtime
        relay_round = runtime.relay.run_once

        async def run_once() -> int:
            if (name, "relay") in self.held:
                return 0  # held: every pending row stays pending
            return await relay_round()

        runtime.relay.run_once = run_once  # type: ignore[method-assign]
        runtime.timers.handlers = _TimerKinds(runtime.timers.handlers)
        gate = self._gates[name] = asyncio.Event()
        gate.set()
        consumer = runtime.consumer
        if consumer is None:
            return
        deliver = consumer.deliver

        async def held_deliver(doc: dict[str, Any]) -> bool:
            if (name, "consumer") in self.held and self.kind == "inprocess":
                # Kept durably, as a slow handler's delivery is: the timer worker leaves it
                # alone until the release (REDELIVER_TIMER set aside); no retry spent.
                await consumer.defer(doc, None, 0, attempts=0)
                return False
            while (name, "consumer") in self.held:
                await gate.wait()  # RabbitMQ: unacknowledged until the release
            return await deliver(doc)

        consumer.deliver = held_deliver  # type: ignore[method-assign]

    # --- waiting -----------------------------------------------------------------------------

    async def _quiet(self) -> tuple[Any, ...]:
        """A snapshot that stops changing once the saga is quiet: per service its pending
        outbox rows, inbox size, timers due soon (and redeliveries, whenever due), and the
        events waiting for its consumer (being applied, or in its RabbitMQ queue or retry
        queues: passive declarations read their depth)."""
        marks: list[Any] = []
        for running in self.services.values():
            async with running.db.session() as s:
                pending = (
                    await s.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
                ).scalar_one()
                inbox = (await s.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
                timers = (
                    await s.execute(
                        text(
                            "SELECT count(*) FROM timers WHERE state = 'scheduled' "
                            "AND (due_at <= now() + interval '1 second' OR kind = :redeliver)"
                            " AND NOT (kind = :redeliver AND :consumer_held)"
                        ),
                        {
                            "redeliver": REDELIVER_TIMER,
                            "consumer_held": (running.name, "consumer") in self.held,
                        },
                    )
                ).scalar_one()
            if (running.name, "relay") in self.held:
                pending = 0  # held back on purpose (hold): settle the rest
            waiting = 0 if (running.name, "consumer") in self.held else await self._waiting(running)
            marks.append((running.name, int(pending), int(inbox), int(timers), waiting))
        return tuple(marks)

    @staticmethod
    async def _waiting(running: Running) -> int:
        consumer, transport = running.runtime.consumer, running.runtime.transport
        if consumer is None or not consumer.handlers:
            return 0
        waiting = consumer.in_flight
        if isinstance(transport, RabbitTransport):
            queue = f"{transport.queue_prefix}{consumer.name}"
            names = [queue, *(retry_queue(queue, i) for i in range(len(transport.retry_delays)))]
            waiting += sum((await transport.queue_depths(names)).values())
        return waiting

    async def settle(self, *, within: float = 20.0, quiet_for: float = 0.4) -> None:
        """Wait until no outbox row is pending, no timer is due soon, no event waits for a
        consumer (nor its retry: in the broker or as a redelivery timer) and the inboxes stopped
        growing for ``quiet_for`` seconds; a held relay's rows and a held consumer's deliveries
        are not waited for (see :meth:`hold`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        last: tuple[Any, ...] | None = None
        stable_since = loop.time()
        while True:
            for running in self.services.values():
                running.runtime.relay.nudge()
            snap = await self._quiet()
            busy = any(pending or timers or waiting for _n, pending, _i, timers, waiting in snap)
            now = loop.time()
            if snap != last or busy:
                last, stable_since = snap, now
            elif now - stable_since >= quiet_for:
                return
            if now > deadline:
                raise AssertionError(f"the saga did not settle within {within}s: {snap}")
            await asyncio.sleep(0.05)

    eventually = staticmethod(wait_until)


@pytest.fixture
def saga_broker(transport_kind: str, request: pytest.FixtureRequest) -> RabbitNamespace | None:
    """The per-test RabbitMQ namespace when ``transport_kind`` is rabbitmq (so such a test
    FAILS under CI=true without a broker), else None."""
    if transport_kind == "rabbitmq":
        return request.getfixturevalue("rabbit")
    return None


@pytest_asyncio.fixture
async def saga(
    transport_kind: str, saga_broker: RabbitNamespace | None, fresh_db: MakeDb
) -> AsyncIterator[Callable[..., Awaitable[SagaHarness]]]:
    """``h = await saga("quota", "orders")`` (a plugin fixture); needs a ``transport_kind``
    fixture (``"rabbitmq"`` or ``"inprocess"``) in the test module or its conftest."""
    made: list[SagaHarness] = []

    async def make(*names: str, **kwargs: Any) -> SagaHarness:
        harness = SagaHarness(transport_kind, fresh_db, saga_broker)
        made.append(harness)
        return await harness.start(*names, **kwargs)

    yield make
    for harness in made:
        await harness.close()


# --- fakes of other services' internal endpoints --------------------------------------------


@dataclass
class FakeFile:
    file_id: str
    organization_id: str
    name: str = "合同凭证.pdf"
    content_type: str = "application/pdf"
    size: int = 1024
    sha256: str = "0" * 64
    uploader_id: str | None = None
    content: bytes = b"%PDF-1.4\n% a test file\n"


@dataclass
class FakeOrg:
    """An organisation as identity knows it now (``GET /internal/organizations/{id}``)."""

    org_id: str
    name: str = ""
    uscc: str | None = None
    kind: str | None = None
    certified: bool = False
    provider: bool = False
    suspended: bool = False
    suspended_reason: str | None = None
    bank_account: bool = True  # a receiving account (支付认证) on file


def known_org(identity: FastAPI, org_id: str) -> FakeOrg | None:
    """The fake identity's record of an organisation (None: unknown to it), to read or change
    (``known_org(app, org_id).suspended = True`` as staff suspending it would)."""
    orgs: dict[str, FakeOrg] = identity.state.orgs
    signed: set[str] | None = identity.state.issuer.orgs.get(org_id) if identity.state.issuer else None
    if org_id not in orgs and signed is not None:
        certified = "enterprise" in signed
        orgs[org_id] = FakeOrg(
            org_id,
            kind="enterprise" if certified else None,
            certified=certified,
            provider="provider" in signed,
        )
    return orgs.get(org_id)


@dataclass
class Hold:
    """A slow peer: while ``gate`` is set and not yet open, every request it holds waits for
    it, and says so on ``arrived`` (its path).

        identity_app, _files = fake_identity()
        identity = Hold()
        identity.on(identity_app, "/internal/organizations/")   # before the harness starts it
        identity.gate = asyncio.Event()                          # slow from now on
        await identity.arrived.get()                             # a request is waiting on it
        identity.gate.set()                                      # it answers
    """

    gate: asyncio.Event | None = None
    arrived: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def on(self, app: FastAPI, prefix: str) -> None:
        """Hold ``app``'s requests whose path starts with ``prefix`` (before the app starts)."""

        @app.middleware("http")
        async def held(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if self.gate is not None and request.url.path.startswith(prefix):
                self.arrived.put_nowait(request.url.path)
                await self.gate.wait()
            return await call_next(request)


def fake_identity() -> tuple[FastAPI, dict[str, FakeFile]]:
    """An ASGI app answering identity's ``/internal/files/{id}`` (and grants) from a dict:
    ``app, files = fake_identity(); files["f1"] = FakeFile("f1", org_id)``; and
    ``/internal/organizations/{id}`` from ``app.state.orgs`` (org id -> :class:`FakeOrg`);
    an organisation not in it that the harness's :class:`TestIssuer` signed a token for is
    known as its tokens say (certified with ``enterprise``, a provider with ``provider``), as
    the real identity knows every organisation it signed for. ``app.state.down = True``
    makes the organisation read fail (503) as an unreachable identity would."""
    app = FastAPI()
    files: dict[str, FakeFile] = {}
    grants: list[tuple[str, str]] = []
    app.state.grants = grants
    orgs: dict[str, FakeOrg] = {}
    app.state.orgs = orgs
    app.state.down = False
    app.state.fake_identity = True
    app.state.issuer = None  # set by SagaHarness.start

    @app.get("/internal/organizations/{org_id}")
    async def organization(org_id: str) -> dict[str, Any]:
        if app.state.down:
            raise HTTPException(503)
        org = known_org(app, org_id)
        if org is None:
            raise HTTPException(404)
        return dict(vars(org))

    @app.get("/internal/files/{file_id}")
    async def file_meta(file_id: str) -> dict[str, Any]:
        f = files.get(file_id)
        if f is None:
            raise HTTPException(404)
        return {
            "file_id": f.file_id,
            "organization_id": f.organization_id,
            "uploader_id": f.uploader_id,
            "name": f.name,
            "content_type": f.content_type,
            "size": f.size,
            "sha256": f.sha256,
            "created_at": "2026-01-01T00:00:00+00:00",
        }

    @app.get("/internal/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        f = files.get(file_id)
        if f is None:
            raise HTTPException(404)
        return Response(content=f.content, media_type=f.content_type)

    @app.post("/internal/files/{file_id}/grants", status_code=204)
    async def grant(file_id: str, body: dict[str, Any]) -> None:
        if file_id not in files:
            raise HTTPException(404)
        grants.append((file_id, str(body.get("organization_id"))))

    return app, files
