"""The bus as operators see it on ``/metrics``: gauges refreshed at each scrape.

- ``voucher_outbox_pending`` / ``voucher_outbox_oldest_pending_age_seconds``: what the relay
  has not published yet, and how long the oldest has waited (off the relay's own index);
- ``voucher_dlq_depth``: dead letters (RabbitMQ: ``<queue>.dlq``; in-process: dead timers);
- ``voucher_retry_depth{queue}``: events waiting for a delayed retry (each
  ``<queue>.retry.<n>``; in-process: the consumer's redelivery timers);
- ``voucher_bus_unrouted_messages{queue}`` (RabbitMQ): events no consumer is bound to, in the
  alternate exchange's bounded queue; it grows while a published event type has no
  consumer (tests/house/test_event_consumers.py fails on such a type);
- ``voucher_consumer_backlog`` (RabbitMQ): events waiting in the service's own queue for its
  consumer, its lag (in-process, events wait in the publishers' outbox instead);
- ``voucher_timers_dead``: durable timers that failed for good (on both transports: on
  RabbitMQ the DLQ gauge counts dead letters, not these);
- ``voucher_bus_connected``: 1 while the link to the bus is up (readiness no longer hangs on
  it, so this is where a broker outage shows);
- ``voucher_timer_lag_seconds``: how overdue the most overdue scheduled timer is (0 when the
  timer worker keeps up);
- ``voucher_money_conflicts``: money events the service recorded as conflicts for staff
  (``common.audit.conflict``), from its audit log;
- ``voucher_consumer_in_flight`` / ``voucher_consumer_paused``: deliveries being applied
  now, and whether the consumer waits for its database;
- ``voucher_consumer_subscribed``: 1 while the consumer's channel to its queue is open (0
  during a broker outage, like ``voucher_bus_connected``; /readyz stays 200 meanwhile).

Each source is bounded by a short time-out; one that does not answer leaves its gauge as
it was (a scrape never hangs or fails because the broker is away).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text

from common.bus.consumer import REDELIVER_TIMER, Consumer
from common.bus.rabbitmq import RabbitTransport, dead_letter_queue, retry_queue, unrouted_queue
from common.bus.transport import Transport
from common.db import Database
from common.metrics import (
    CONSUMER_BACKLOG,
    CONSUMER_IN_FLIGHT,
    CONSUMER_PAUSED,
    DLQ_DEPTH,
    MONEY_CONFLICTS,
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PENDING,
    RETRY_DEPTH,
    TIMER_LAG,
    TIMERS_DEAD,
    UNROUTED_DEPTH,
)

log = structlog.get_logger(__name__)

SCRAPE_TIMEOUT = 2.0

_DATABASE = text(
    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS pending, "
    "(SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox WHERE sent_at IS NULL) "
    "AS oldest, "
    "(SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0) FROM timers "
    "WHERE state = 'scheduled' AND due_at <= now()) AS lag, "
    "(SELECT count(*) FROM timers WHERE state = 'dead') AS dead, "
    "(SELECT count(*) FROM timers WHERE state = 'scheduled' AND kind = :redeliver) AS redeliveries, "
    "to_regclass('audit_log') IS NOT NULL AS audited"
)
_CONFLICTS = text("SELECT count(*) FROM audit_log WHERE action LIKE 'conflict.%'")


async def refresh(name: str, db: Database, consumer: Consumer | None, transport: Transport) -> None:
    """The gauges of one service's outbox, timers, consumer and queues (its runtime's parts)."""
    if consumer is not None:
        CONSUMER_IN_FLIGHT.labels(consumer.name).set(consumer.in_flight)
        CONSUMER_PAUSED.labels(consumer.name).set(1 if consumer.paused else 0)
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            async with db.session() as session:
                row = (await session.execute(_DATABASE, {"redeliver": REDELIVER_TIMER})).one()
                # a bare runtime without the common audit log still shows the bus gauges
                conflicts = (await session.execute(_CONFLICTS)).scalar_one() if row.audited else 0
    except Exception:  # noqa: BLE001 - the database away: the gauges keep their last values
        log.warning("metrics_database_unavailable", service=name)
        row = None
    if row is not None:
        OUTBOX_PENDING.labels(name).set(row.pending)
        OUTBOX_OLDEST_PENDING_AGE.labels(name).set(float(row.oldest or 0))
        TIMER_LAG.labels(name).set(max(0.0, float(row.lag or 0)))
        MONEY_CONFLICTS.labels(name).set(conflicts)
        TIMERS_DEAD.labels(name).set(row.dead)
    if isinstance(transport, RabbitTransport):
        unrouted = unrouted_queue(transport.exchange_name)
        names = [unrouted]
        if consumer is not None and consumer.handlers:
            queue = f"{transport.queue_prefix}{consumer.name}"
            names += [
                dead_letter_queue(queue),
                queue,
                *(retry_queue(queue, i) for i in range(len(transport.retry_delays))),
            ]
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                depths = await transport.queue_depths(names)
        except Exception:  # noqa: BLE001 - the broker away: keep the last values
            log.warning("metrics_broker_unavailable", service=name)
            return
        UNROUTED_DEPTH.labels(unrouted).set(depths.get(unrouted, 0))
        if len(names) > 1:
            DLQ_DEPTH.labels(name).set(depths.get(names[1], 0))
            CONSUMER_BACKLOG.labels(name).set(depths.get(names[2], 0))
            for retry in names[3:]:
                RETRY_DEPTH.labels(name, retry).set(depths.get(retry, 0))
    elif row is not None:
        DLQ_DEPTH.labels(name).set(row.dead)
        RETRY_DEPTH.labels(name, "database").set(row.redeliveries)
