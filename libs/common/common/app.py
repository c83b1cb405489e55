"""The runtime every service shares: database, migrations, bus, relay, consumer, timers, the
revoked tokens (common.access), and the FastAPI app around them (errors, middleware, health,
metrics).

``create_app(settings)`` of each service builds a :class:`ServiceRuntime` and calls
:func:`create_service_app`. The app's lifespan starts and stops the runtime; the all-in-one
launcher enters each mounted app's lifespan itself, passing one shared in-process transport.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from common import registry, tracing
from common.access import AccessRevocations
from common.auth import KeySet, TokenVerifier
from common.bus import observe
from common.bus.consumer import REDELIVER_TIMER, Consumer
from common.bus.inprocess import InProcessTransport
from common.bus.outbox import OutboxRelay
from common.bus.rabbitmq import RabbitTransport
from common.bus.retention import RETENTION_TIMER, RetentionSettings, ensure_scheduled, retention_handler
from common.bus.transport import Transport
from common.db import Database, migrate
from common.errors import install_error_handlers
from common.http import BodySizeLimitMiddleware, RequestContextMiddleware
from common.internal import ServiceClients
from common.logging import configure_logging
from common.metrics import BUS_CONNECTED, CONSUMER_SUBSCRIBED, render
from common.openapi import install_problem_docs, operation_id
from common.sanitize import RejectNulMiddleware
from common.settings import ServiceSettings
from common.timers import TimerHandler, TimerWorker

log = structlog.get_logger(__name__)

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


def build_transport(settings: ServiceSettings) -> Transport:
    if settings.bus_transport == "inprocess":
        return InProcessTransport(retry_delays=settings.bus_retry_delays)
    # Every service declares the registry's whole topology at start (idempotent): an event
    # published before its consumer's first start waits in that consumer's queue (where its
    # broker user may not, the broker holds that queue: RabbitTransport.declare_topology).
    return RabbitTransport(
        settings.amqp_url,
        exchange=settings.bus_exchange,
        queue_prefix=settings.bus_queue_prefix,
        retry_delays=settings.bus_retry_delays,
        publish_timeout=settings.bus_publish_timeout,
        connection_name=settings.service_name,
        topology=registry.topology(settings.bus_exchange),
    )


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations_dir: Path | None,
        consumer: Consumer | None = None,
        timer_handlers: dict[str, TimerHandler] | None = None,
        transport: Transport | None = None,
        key_set: KeySet | None = None,
        http_client: httpx.AsyncClient | None = None,
        peers: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.migrations_dir = migrations_dir
        self.db = Database(
            settings.db_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            read_pool_size=settings.db_read_pool_size,
            lock_timeout=settings.db_lock_timeout,
            statement_timeout=settings.db_statement_timeout,
        )
        self.owns_transport = transport is None
        self.transport = transport or build_transport(settings)
        self.relay = OutboxRelay(
            self.db,
            self.transport,
            poll_interval=settings.outbox_poll_interval,
            retry_delays=settings.bus_retry_delays,
            name=self.name,
        )
        self.consumer = consumer
        if consumer is not None:
            consumer.db = self.db
        self.timers = TimerWorker(
            self.db,
            dict(timer_handlers or {}),
            retry_delays=settings.bus_retry_delays,
            poll_interval=settings.timer_poll_interval,
            name=self.name,
        )
        if consumer is not None:
            self.timers.register(REDELIVER_TIMER, consumer.redeliver)
        # Sent outbox rows, inbox rows and dead timers are pruned by a durable timer.
        self.retention = RetentionSettings()
        self.timers.register(RETENTION_TIMER, retention_handler(self.db, self.retention))
        self.key_set = key_set or KeySet(settings.jwks_url, client=http_client)
        # The tokens identity revoked, read from this service's own database (common.access).
        self.revocations = AccessRevocations(self.db, interval=settings.revocation_poll_interval)
        self.verifier = TokenVerifier(
            self.key_set,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            revocations=self.revocations,
        )
        # Other services' /internal/ endpoints (in-process peers in all-in-one mode).
        self.clients = ServiceClients(
            self.name, settings.service_token_secret, urls=settings.service_urls, peers=peers
        )
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.prepared = False
        self.started = False

    async def prepare(self) -> None:
        """Phase 1: the database (migrated), the transport, the consumer subscribed.

        Nothing is published yet. All-in-one, the launcher prepares every service before it
        begins any, so no service's start hook or relay publishes before every consumer is
        subscribed (the in-process bus delivers only to subscribed consumers).
        """
        if self.migrations_dir is not None and self.settings.run_migrations:
            await migrate(self.migrations_dir, self.settings.db_url)
        # Before the first request: a token revoked while this process was down stays refused.
        await self.revocations.load()
        if self.owns_transport:
            await self.transport.start()
        if self.consumer is not None and self.consumer.handlers:
            await self.transport.subscribe(self.consumer)
        self.prepared = True

    async def begin(self) -> None:
        """Phase 2: start hooks (which may publish), then the relay and the timers."""
        for hook in self.on_start:
            await hook(self)
        try:
            await ensure_scheduled(self.db, self.retention)
        except Exception:  # noqa: BLE001 - no timers table (a runtime without migrations)
            log.warning("retention_not_scheduled", service=self.name)
        self.relay.start()
        self.timers.start()
        self.revocations.start()
        self.started = True
        log.info("service_started", service=self.name, transport=type(self.transport).__name__)

    async def start(self) -> None:
        await self.prepare()
        await self.begin()

    async def stop(self) -> None:
        self.started = False
        await self.relay.stop()
        await self.timers.stop()
        await self.revocations.stop()
        for hook in reversed(self.on_stop):
            try:
                await hook(self)
            except Exception:
                log.exception("stop_hook_failed", service=self.name)
        if self.owns_transport:
            await self.transport.stop()
        await self.clients.aclose()
        await self.db.dispose()

    async def readiness(self) -> dict[str, bool]:
        """What decides whether this process may take requests: its database answers. The
        broker does not: a request commits its change and its event waits in the outbox until
        the relay can publish it (issue 17, section 5); see :meth:`informational`."""
        return {"database": await self.db.ping()}

    def informational(self) -> dict[str, bool]:
        """What /readyz shows without deciding on it (and /metrics exports): the broker's
        connection, the consumer's subscription, the relay and the timer worker running.
        While the broker is away events wait in the outbox and deliveries in their queues."""
        transport = self.transport.health()
        broker = transport.get("broker", False)
        BUS_CONNECTED.labels(self.name).set(1 if broker else 0)
        states = {"broker": broker}
        if self.consumer is not None and self.consumer.handlers:
            subscribed = transport.get(f"consumer:{self.consumer.name}", False)
            CONSUMER_SUBSCRIBED.labels(self.consumer.name).set(1 if subscribed else 0)
            states["consumer"] = subscribed
        states["relay"] = self.relay.running
        states["timers"] = self.timers.running
        return states


async def start_together(runtimes: Sequence[ServiceRuntime]) -> list[ServiceRuntime]:
    """Start several services of one process (all-in-one) so no event is lost: every one is
    prepared (migrated, transport started, consumer subscribed) before any begins (start
    hooks, relay, timers), since the in-process bus delivers only to subscribed consumers.
    Returns the runtimes begun (for the caller to stop, also after a failure)."""
    for runtime in runtimes:
        await runtime.prepare()
    begun: list[ServiceRuntime] = []
    for runtime in runtimes:
        begun.append(runtime)
        await runtime.begin()
    return begun


@dataclass(frozen=True)
class ReadinessReport:
    """What /readyz answers: ``ready`` (200, else 503) decided by ``checks`` alone; the
    ``informational`` states are shown (the broker, the consumer...) but never decide."""

    ready: bool
    checks: dict[str, bool]
    informational: dict[str, bool] = field(default_factory=dict)


Readiness = Callable[[Request], Awaitable[ReadinessReport]]


async def service_readiness(request: Request) -> ReadinessReport:
    runtime: ServiceRuntime = request.app.state.runtime
    checks = await runtime.readiness()
    return ReadinessReport(runtime.started and all(checks.values()), checks, runtime.informational())


async def _refresh_bus_gauges(request: Request) -> None:
    runtime: ServiceRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is not None and runtime.prepared:
        runtime.informational()  # voucher_bus_connected, voucher_consumer_subscribed
        # the bus gauges (outbox, DLQ, retries, timers)
        await observe.refresh(runtime.name, runtime.db, runtime.consumer, runtime.transport)


def freeze_startup_heap() -> None:
    """Move what start-up made (modules, models, compiled schemas, routes: most of a service's
    objects) out of the garbage collector's sight. Without it every full collection walks
    them all: py-spy and gc.callbacks showed identity spending 30-150 ms per gen-2 pass, about
    0.2 ms per request, and those passes were the p99. Objects made later are collected as
    usual; what start-up left behind for good is not garbage, so nothing leaks.

    Once per process: the first app to start does it (a server process runs one app, or the
    all-in-one gateway after every service began); a test process that starts many apps
    does not pay a full collection for each."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def health_router(
    readiness: Readiness = service_readiness,
    before_metrics: Callable[[Request], Awaitable[None]] | None = _refresh_bus_gauges,
) -> APIRouter:
    """``/healthz`` (the process answers), ``/readyz`` (200 when ``readiness`` says ready,
    else 503 with the failing checks; what it only shows, such as the broker, under
    ``informational``) and ``/metrics`` (Prometheus), for every service and
    the gateway; RequestContextMiddleware guards the last in production."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        report = await readiness(request)
        body: dict[str, Any] = {"status": "ready" if report.ready else "not_ready", "checks": report.checks}
        if report.informational:
            body["informational"] = report.informational
        return JSONResponse(body, status_code=200 if report.ready else 503)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        if before_metrics is not None:
            await before_metrics(request)
        body, content_type = render()
        return Response(body, media_type=content_type)

    return router


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    body_limit_overrides: dict[str, int] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    settings = runtime.settings
    configure_logging(settings.log_level, json=settings.log_json)
    # Off unless OTEL_EXPORTER_OTLP_ENDPOINT names a collector (common.tracing).
    tracing.setup_tracing(settings.service_name, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        freeze_startup_heap()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.db = runtime.db
    app.state.token_verifier = runtime.verifier
    install_error_handlers(app)
    install_problem_docs(app)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes, overrides=body_limit_overrides)
    app.add_middleware(
        RequestContextMiddleware, service=settings.service_name, guarded=settings.guarded_paths
    )
    tracing.instrument_app(app)  # outermost: the request's SERVER span (when tracing is on)
    return app


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.read_session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
# For a route that only reads (see Database.read_session): two round trips fewer per request.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_settings(request: Request) -> ServiceSettings:
    """The service's settings; each service names its own class:
    ``SettingsDep = Annotated[Settings, Depends(get_settings)]``."""
    settings: ServiceSettings = request.app.state.settings
    return settings


async def get_clients(runtime: RuntimeDep) -> ServiceClients:
    return runtime.clients


ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
