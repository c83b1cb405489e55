"""Tracing (issue 17, section 3): off by default; on, one trace runs from a request through the
outbox and the bus (RabbitMQ and in-process) to the consumer in another service and its
internal reads; envelopes without a trace context are applied as ever; spans reach an OTLP
collector over HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common import tracing
from common.app import ServiceRuntime, create_service_app
from common.bus.outbox import emit
from common.bus.rabbitmq import _message
from common.db import Database
from common.events import Envelope
from common.settings import ServiceSettings
from common.testing.bus import CERTIFIED, Bus, certified

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


def reset_opentelemetry() -> None:
    """Undo a process's tracing: OpenTelemetry sets its global provider once per process, and
    every test here (and whatever test runs after it in this worker) starts without one."""
    tracing.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # what opentelemetry-test-utils does
    trace._TRACER_PROVIDER = None


@pytest.fixture(autouse=True)
def no_tracing_around(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    reset_opentelemetry()
    yield
    reset_opentelemetry()


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Tracing on (a collector named) with the spans kept in memory instead of exported."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never called
    exporter = InMemorySpanExporter()
    assert tracing.setup_tracing("alpha", span_processor=SimpleSpanProcessor(exporter))
    return exporter


def settings_for(name: str, url: str) -> ServiceSettings:
    class Settings(ServiceSettings):
        service_name: ClassVar[str] = name

    return Settings(environment="development", database_url=url, bus_transport="inprocess", log_json=False)


def alpha_app(bus: Bus) -> tuple[Any, ServiceRuntime]:
    """A service app (common.app, as every service builds its own) whose route certifies an
    organisation: its event goes out through the outbox."""
    runtime = ServiceRuntime(
        settings_for("alpha", bus.publisher_db.url), migrations_dir=None, transport=bus.transport
    )
    router = APIRouter()

    @router.post("/orgs/{org_id}/certify", status_code=202)
    async def certify(org_id: str) -> dict[str, str]:
        [envelope] = await bus.emit((certified(org_id), org_id))
        return {"event_id": envelope.event_id}

    return create_service_app(runtime, title="alpha", routers=[router]), runtime


async def outbox_bodies(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        return [
            r[0] if isinstance(r[0], dict) else json.loads(r[0])
            for r in await session.execute(text("SELECT body FROM outbox"))
        ]


def one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"{what}: {[s.name for s in found]}"
    return found[0]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of ``span``'s ancestors in this trace, nearest first."""
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


class PeerServer:
    """A peer's /internal/ endpoint over real HTTP (a thread), keeping each request's headers."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                seen.append({"path": self.path, "body": self.rfile.read(length).hex()})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PeerServer:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- 1. off by default -------------------------------------------------------------------------


async def test_without_a_collector_nothing_is_installed_and_events_carry_no_trace(
    schema_db: Callable[[], Awaitable[Database]],
) -> None:
    db = await schema_db()
    runtime = ServiceRuntime(settings_for("alpha", db.url), migrations_dir=None)
    try:
        app = create_service_app(runtime, title="alpha")  # what every service does at start

        assert tracing.enabled is False
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # the no-op
        assert not [m for m in app.user_middleware if "OpenTelemetry" in m.cls.__name__]  # type: ignore[attr-defined]
        async with db.transaction() as session:
            envelope = await emit(session, certified("o1"), aggregate_id="o1")
        assert envelope.trace is None
        [body] = await outbox_bodies(db)
        assert "trace" not in body  # the envelope as it was before tracing existed
        assert "traceparent" not in (_message(body).headers or {})
    finally:
        await runtime.db.dispose()


def test_an_endpoint_turns_tracing_on_unless_the_sdk_is_disabled() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


# --- 2. one trace: request -> outbox -> bus -> consumer -> its internal read --------------------


async def test_one_trace_runs_from_a_request_through_the_bus_to_the_consumer_and_its_reads(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    app, runtime = alpha_app(bus)
    ledger_certified = bus.consumer.handlers[CERTIFIED]
    with PeerServer() as peer:

        async def certified_then_read(session: AsyncSession, env: Envelope[Any]) -> None:
            await ledger_certified(session, env)
            async with httpx.AsyncClient() as client:  # an internal read, as services make them
                (await client.get(f"{peer.url}/internal/orgs/{env.aggregate_id}")).raise_for_status()

        bus.consumer.on(CERTIFIED)(certified_then_read)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://alpha"
            ) as client:
                assert (await client.get("/healthz")).status_code == 200  # probes make no spans
                response = await client.post("/orgs/o1/certify")
            assert response.status_code == 202, response.text
            event_id = response.json()["event_id"]
            await bus.relay().drain()
            await bus.eventually(
                lambda: [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER],
                what="the consumer's span",
            )
        finally:
            await runtime.db.dispose()

        finished = list(spans.get_finished_spans())
        by_id = {s.context.span_id: s for s in finished}
        server = one([s for s in finished if s.kind is SpanKind.SERVER], "server spans")
        create = one([s for s in finished if s.name == f"{CERTIFIED} create"], "create spans")
        send = one([s for s in finished if s.name == f"{CERTIFIED} send"], "send spans")
        process = one([s for s in finished if s.name == f"{CERTIFIED} process"], "process spans")
        read = one([s for s in finished if s.kind is SpanKind.CLIENT], "internal reads")

        trace_id = server.context.trace_id
        assert server.parent is None
        assert server.name == "POST /orgs/{org_id}/certify"  # the route, not this organisation's path
        assert {s.context.trace_id for s in (create, send, process, read)} == {trace_id}
        # The event was created inside the request; the consumer's span continues it.
        assert create.kind is SpanKind.PRODUCER and create.parent.span_id == server.context.span_id
        assert send.parent.span_id == create.context.span_id
        assert process.kind is SpanKind.CONSUMER and process.parent.span_id == create.context.span_id
        assert server.name in ancestors(process, by_id)
        assert process.attributes["messaging.system"] == "rabbitmq"
        assert process.attributes["messaging.message.id"] == event_id
        assert process.attributes["messaging.destination.name"] == CERTIFIED
        assert process.attributes["messaging.consumer.group.name"] == "ledger"
        # The handler's read is in the same trace and tells the peer so (W3C traceparent).
        assert read.parent.span_id == process.context.span_id
        [headers] = peer.seen
        _version, peer_trace, peer_parent, _flags = headers["traceparent"].split("-")
        assert (int(peer_trace, 16), int(peer_parent, 16)) == (trace_id, read.context.span_id)
        # The envelope in the outbox holds the producer's context.
        [body] = await outbox_bodies(bus.publisher_db)
        assert body["trace"]["traceparent"].split("-")[1:3] == [
            f"{trace_id:032x}",
            f"{create.context.span_id:016x}",
        ]


CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("edge", [False, True], ids=["service", "gateway"])
async def test_a_service_continues_its_callers_trace_and_the_public_edge_starts_its_own(
    spans: InMemorySpanExporter, edge: bool
) -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str, request: Request) -> dict[str, bool]:
        return {"context_seen": "traceparent" in request.headers}

    tracing.instrument_app(app, edge=edge)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        response = await client.get("/things/1", headers={"traceparent": CALLER})

    [server] = spans.get_finished_spans()
    assert server.name == "GET /things/{thing_id}"
    caller_trace, caller_span = int(CALLER.split("-")[1], 16), int(CALLER.split("-")[2], 16)
    if edge:  # a client cannot join (or force the sampling of) a trace of ours
        assert server.parent is None and server.context.trace_id != caller_trace
        assert response.json() == {"context_seen": False}  # nor is its context passed on
    else:
        assert (server.context.trace_id, server.parent.span_id) == (caller_trace, caller_span)


def test_the_relay_copies_the_trace_context_into_the_amqp_headers() -> None:
    context = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1"}
    doc = Envelope.wrap(certified("o1"), aggregate_id="o1", trace=context).to_json()
    doc["trace"]["sequence"] = "999"  # nothing but the W3C headers is copied

    headers = _message(doc).headers or {}

    assert headers["traceparent"] == context["traceparent"]
    assert headers["tracestate"] == "a=1"
    assert headers["sequence"] == doc["sequence"]


# --- 3. envelopes without a (valid) trace context ---------------------------------------------


@pytest.mark.parametrize(
    "trace_field",
    [pytest.param(None, id="older-envelope"), {"traceparent": "not-a-traceparent"}, 42],
)
async def test_an_envelope_without_a_trace_context_is_applied_in_a_trace_of_its_own(
    bus: Bus, spans: InMemorySpanExporter, trace_field: Any
) -> None:
    doc = Envelope.wrap(certified("old"), aggregate_id="old", sequence=1).to_json()
    assert "trace" not in doc  # as envelopes were written before tracing (outbox rows, DLQs)
    if trace_field is not None:
        doc["trace"] = trace_field

    await bus.transport.publish(doc)

    async def applied() -> list[str]:
        async with bus.consumer_db.session() as s:
            return [r[0] for r in await s.execute(text("SELECT event_id FROM applied"))]

    assert await bus.eventually(applied, what="the event applied") == [doc["event_id"]]
    process = await bus.eventually(
        lambda: [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER], what="its span"
    )
    assert process[0].parent is None  # the root of a trace of its own
    assert process[0].attributes["messaging.message.id"] == doc["event_id"]


def test_envelopes_parse_with_and_without_a_trace_context_both_ways() -> None:
    older = Envelope.wrap(certified("o1"), aggregate_id="o1").to_json()
    newer = {**older, "trace": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}

    assert Envelope.from_json(older).trace is None
    assert Envelope.from_json(newer).trace == newer["trace"]
    assert Envelope.from_json(newer).to_json() == newer
    assert Envelope.from_json({**older, "trace": "garbage"}).trace is None


# --- 4. the collector ---------------------------------------------------------------------------


async def test_spans_reach_an_otlp_http_collector_named_by_the_standard_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with PeerServer() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        assert tracing.setup_tracing("alpha", settings_for("alpha", "postgresql://x@y/z"))
        trace_context = tracing.event_created(CERTIFIED, "e-1", "o1")
        assert trace_context is not None
        await asyncio.to_thread(tracing.shutdown)  # flushes the batch to the collector

        [export] = collector.seen
    assert export["path"] == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(bytes.fromhex(export["body"]))
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "voucher-alpha"
    assert resource["deployment.environment.name"] == "development"
    [span] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == f"{CERTIFIED} create"
    assert span.trace_id.hex() == trace_context["traceparent"].split("-")[1]
