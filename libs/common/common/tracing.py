"""OpenTelemetry tracing across the gateway, the services and the bus: off unless a collector
is named.

Configured by the standard OpenTelemetry environment variables only (the SDK reads them
itself), so any OTLP collector works and nothing here is specific to one vendor:

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``http://collector:4318``; spans go to ``/v1/traces``) or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the whole URL): tracing is ON when either is set,
  and OFF (the default) when neither is. OTLP over HTTP/protobuf; ``OTEL_EXPORTER_OTLP_HEADERS``,
  ``..._TIMEOUT``, ``..._COMPRESSION`` and ``..._CERTIFICATE`` as the SDK documents them;
- ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: off even with an endpoint;
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: sampling (the SDK's default is
  ``parentbased_always_on``; ``parentbased_traceidratio`` with ``0.1`` keeps a tenth);
- ``OTEL_RESOURCE_ATTRIBUTES``: more resource attributes. ``service.name`` is always
  ``voucher-<service>`` (one env file configures every process alike, so a shared
  ``OTEL_SERVICE_NAME`` would name them all the same).

Off, nothing is installed: the global tracer provider stays OpenTelemetry's no-op proxy, no
middleware wraps the apps, no client is patched, and the bus pays one ``if enabled`` per
event (the outbox, the relay, the consumer). On, :func:`setup_tracing` installs a
``TracerProvider`` (``BatchSpanProcessor`` + the OTLP/HTTP exporter) with W3C trace context
propagation (``traceparent``/``tracestate``), instruments outgoing httpx (the services'
internal reads) and aiohttp (the gateway's forwarding) requests, and
:func:`instrument_app` puts the ASGI server middleware around an app.

The bus carries the context in the event envelope (``Envelope.trace``, the W3C headers):
:func:`event_created` opens the PRODUCER ``<event_type> create`` span when the outbox writes
an event, :func:`sending` the relay's ``<event_type> send`` span, and :func:`processing` the
consumer's CONSUMER ``<event_type> process`` span, whose parent is the producer's context:
one trace runs gateway -> service -> outbox -> relay -> consumer in another service -> its
internal reads. Messaging attributes follow the semantic conventions
(``messaging.system=rabbitmq``, ``messaging.message.id`` = the event id,
``messaging.destination.name`` = the routing key, i.e. the event type; the consumer's queue as
``messaging.consumer.group.name``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger(__name__)

# True once this process installed a tracer provider; the bus's hot paths test it (one
# attribute read) before they do anything about tracing.
enabled = False

_provider: Any = None  # the SDK TracerProvider this process installed
_tracer: trace.Tracer | None = None

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Probes and scrapes make no spans (the collector would mostly receive those).
EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$"
MESSAGING_SYSTEM = "rabbitmq"


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for tracing: an OTLP endpoint named, the SDK not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def setup_tracing(
    service_name: str,
    settings: Any = None,
    *,
    environ: Mapping[str, str] | None = None,
    span_processor: Any = None,
) -> bool:
    """Install tracing for this process when the environment asks for it; True when on.

    Once per process: the first call installs the provider (named after its service; the
    all-in-one process is named after the first app it builds), later calls return at once.
    ``settings`` (a service's or the gateway's) adds ``deployment.environment``.
    ``span_processor`` replaces the batch processor + OTLP exporter (tests: an in-memory one);
    the environment must still ask for tracing."""
    global enabled, _provider, _tracer
    if enabled:
        return True
    if not wanted(environ):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, str] = {"service.name": f"voucher-{service_name}"}
    environment = getattr(settings, "environment", None)
    if environment:
        attributes["deployment.environment.name"] = str(environment)
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); resource attributes also from
    # OTEL_RESOURCE_ATTRIBUTES (ours take precedence).
    provider = TracerProvider(resource=Resource.create(attributes))
    if span_processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_processor = BatchSpanProcessor(OTLPSpanExporter())  # endpoint etc. from OTEL_* env
    provider.add_span_processor(span_processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("voucher.bus")
    _instrument_clients(provider)
    enabled = True
    log.info(
        "tracing_enabled",
        service=attributes["service.name"],
        sampler=os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
    )
    return True


def _instrument_clients(provider: Any) -> None:
    """Outgoing HTTP: httpx (the services' internal reads, the gateway's composer) and
    aiohttp (the gateway's forwarding; sessions made after this call)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        import aiohttp  # noqa: F401 - only the gateway has it
    except ImportError:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().instrument(tracer_provider=provider)


def instrument_app(app: FastAPI, *, edge: bool = False) -> None:
    """The ASGI server middleware, outermost (call it after the app's last ``add_middleware``):
    a SERVER span per request, continuing the caller's ``traceparent``. Nothing when off.

    ``edge``: the public entry (the gateway). A caller's trace context is dropped there, so
    every trace starts at the platform's edge: a client cannot force its requests to be
    sampled (the default sampler follows a parent's decision) or join a trace of ours."""
    if not enabled:
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(_NameByRoute)
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=EXCLUDED_URLS,
        default_span_details=_method_only,
        exclude_spans=["receive", "send"],
        tracer_provider=_provider,
    )
    if edge:
        app.add_middleware(_DropCallersContext)


_CONTEXT_HEADERS = frozenset((b"traceparent", b"tracestate", b"baggage"))


class _DropCallersContext:
    """Removes the caller's trace context headers before anything reads them (nor are they
    forwarded: the gateway's own client span sends its context)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and any(k in _CONTEXT_HEADERS for k, _ in scope["headers"]):
            headers = [(k, v) for k, v in scope["headers"] if k not in _CONTEXT_HEADERS]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def _method_only(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method") or "HTTP"), {}


class _NameByRoute:
    """Names the request's SERVER span after the route it was routed to, once routing is
    done: ``POST /orders/{order_id}/accept`` (one name per operation however many orders,
    with ``http.route``). A request no route took (the gateway's proxied ones: its client
    span and the service's server span name them) keeps the method alone."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def named(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{scope.get('method')} {route}")
                    span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, named)


def shutdown() -> None:
    """Flush and uninstall (tests; a process's exit flushes by itself). The global provider
    cannot be unset through the API: a test resets OpenTelemetry's globals itself."""
    global enabled, _provider, _tracer
    if not enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        AioHttpClientInstrumentor().uninstrument()
    except ImportError:
        pass
    if _provider is not None:
        _provider.shutdown()
    enabled, _provider, _tracer = False, None, None


# --- the bus: the context in the envelope ----------------------------------------------------


def _bus_tracer() -> trace.Tracer:
    return _tracer if _tracer is not None else trace.get_tracer("voucher.bus")


def _carrier(context: Any = None) -> dict[str, str] | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")} or None


def event_created(event_type: str, event_id: str, aggregate_id: str) -> dict[str, str] | None:
    """The PRODUCER ``<event_type> create`` span of an event the outbox writes (a child of the
    request or job that emits it); returns its W3C context (``traceparent``, ``tracestate``) for the
    envelope."""
    span = _bus_tracer().start_span(
        f"{event_type} create",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            **_messaging(event_type, event_id, "create", "create"),
            "voucher.aggregate_id": aggregate_id,
        },
    )
    try:
        return _carrier(trace.set_span_in_context(span))
    finally:
        span.end()


def _parent(doc: Mapping[str, Any]) -> Any:
    carrier = doc.get("trace")
    return propagate.extract(carrier) if isinstance(carrier, dict) else None


def _messaging(event_type: str, event_id: str, operation: str, name: str) -> dict[str, str]:
    """The semantic conventions' messaging attributes of a bus span."""
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": name,
        "messaging.message.id": event_id,
        "messaging.destination.name": event_type,
        "messaging.rabbitmq.destination.routing_key": event_type,
    }


@contextmanager
def sending(doc: Mapping[str, Any]) -> Iterator[None]:
    """The relay's PRODUCER ``<event_type> send`` span, under the event's create span (it
    shows how long the event waited in the outbox)."""
    event_type = str(doc.get("event_type"))
    with _bus_tracer().start_as_current_span(
        f"{event_type} send",
        context=_parent(doc),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            **_messaging(event_type, str(doc.get("event_id")), "send", "publish"),
        },
    ):
        yield


@contextmanager
def processing(doc: Mapping[str, Any], consumer: str) -> Iterator[trace.Span]:
    """The CONSUMER ``<event_type> process`` span of one delivery to ``consumer``, whose parent
    is the context the producer wrote in the envelope (a new trace for an envelope without
    one: written before tracing, or while it was off)."""
    event_type = str(doc.get("event_type"))
    with _bus_tracer().start_as_current_span(
        f"{event_type} process",
        context=_parent(doc),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            **_messaging(event_type, str(doc.get("event_id")), "process", "process"),
            "messaging.consumer.group.name": consumer,
            "voucher.aggregate_id": str(doc.get("aggregate_id")),
        },
    ) as span:
        yield span
