"""Prometheus metrics, defined once per process (all-in-one mounts several services in one
process, so every metric carries a ``service`` label rather than being registered twice)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "voucher_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "voucher_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PUBLISHED = Counter("voucher_outbox_published_total", "Outbox rows published", ["relay"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "voucher_outbox_publish_failures_total", "Failed outbox publishes", ["relay"]
)
EVENTS_CONSUMED = Counter(
    "voucher_events_consumed_total",
    "Events handled by consumers, by outcome (applied, duplicate, retried, deferred, parked)",
    ["consumer", "event_type", "outcome"],
)
PROBLEMS = Counter(
    "voucher_problems_total",
    "Problems (RFC 9457) answered by a route, by stable code (route: the path template)",
    ["service", "method", "route", "status", "code"],
)
# Statements each service's database is sent (BEGIN/COMMIT aside): the cost a hot path's
# changes move most (bench/saga.py prints them per order).
DB_STATEMENTS = Counter("voucher_db_statements_total", "SQL statements sent to PostgreSQL", ["database"])
RATE_LIMITED = Counter("voucher_rate_limited_total", "Requests refused by the rate limiter", ["scope"])


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


# --- the bus, as operators watch it (set at each scrape by common.bus.observe) -----------------
OUTBOX_PENDING = Gauge("voucher_outbox_pending", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "voucher_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
DLQ_DEPTH = Gauge("voucher_dlq_depth", "Dead letters waiting for an operator", ["service"])
RETRY_DEPTH = Gauge("voucher_retry_depth", "Events waiting for a delayed retry", ["service", "queue"])
UNROUTED_DEPTH = Gauge(
    "voucher_bus_unrouted_messages",
    "Events no consumer is bound to, kept (bounded, oldest dropped) in the alternate exchange's queue",
    ["queue"],
)
TIMER_LAG = Gauge("voucher_timer_lag_seconds", "How overdue the most overdue scheduled timer is", ["service"])
MONEY_CONFLICTS = Gauge(
    "voucher_money_conflicts",
    "Money events a service could not apply as it should, kept for staff (audit log conflict.*)",
    ["service"],
)
CONSUMER_IN_FLIGHT = Gauge("voucher_consumer_in_flight", "Deliveries being applied right now", ["consumer"])
CONSUMER_PAUSED = Gauge(
    "voucher_consumer_paused", "1 while a consumer waits for its database to answer", ["consumer"]
)
TIMERS_DEAD = Gauge(
    "voucher_timers_dead",
    "Durable timers that failed for good (state 'dead'): each needs an operator, on either transport",
    ["service"],
)
CONSUMER_BACKLOG = Gauge(
    "voucher_consumer_backlog",
    "Events waiting in the service's queue for its consumer (RabbitMQ: ready messages), its lag",
    ["service"],
)
# The broker as each process sees it (set at each scrape and each /readyz): readiness does
# not depend on it (issue 17, section 5), so an outage shows here and in the outbox backlog.
BUS_CONNECTED = Gauge("voucher_bus_connected", "1 while the service's link to the bus is up", ["service"])
CONSUMER_SUBSCRIBED = Gauge(
    "voucher_consumer_subscribed", "1 while a consumer's channel to its queue is open", ["consumer"]
)

# --- readiness, as the probes saw it (recorded by common.http on each /readyz answer) ----------
READY = Gauge("voucher_ready", "1 when the last /readyz answer was ready (200), else 0", ["service"])
READINESS_CHANGES = Counter(
    "voucher_readiness_changes", "Times the /readyz answer turned (ready <-> not ready)", ["service"]
)
_last_readiness: dict[str, bool] = {}


def record_readiness(service: str, ready: bool) -> None:
    """One /readyz answer: the gauge, and a change counted when it differs from the last one
    (flaps show as ``increase(voucher_readiness_changes_total[15m])``)."""
    previous = _last_readiness.get(service)
    if previous is None:
        READINESS_CHANGES.labels(service)  # exported as 0 from the first answer on
    elif previous != ready:
        READINESS_CHANGES.labels(service).inc()
    _last_readiness[service] = ready
    READY.labels(service).set(1 if ready else 0)
