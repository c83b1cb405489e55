"""The service registry: one row per service, and everything that derives from it.

Each row names a service (its package, database, queue and CLI share the name), its port, its
app factory, the public paths it answers below ``/api/v1``, the portal figures it fills and
the events it consumes. From this one table come:

- the launcher's services, in both modes (``gateway.launcher``);
- the gateway's routing table, public paths and upstream URLs (``gateway.routes``), and the
  larger request bodies some routes take (:func:`body_limit`);
- how services reach each other's ``/internal/`` endpoints (:func:`internal_url`);
- the RabbitMQ topology: the exchange, each consuming service's queue, retry and dead-letter
  queues and bindings (:func:`topology`), declared whole by every service at start and
  written out as ``deploy/rabbitmq/definitions.json``;
- the deployment checks (compose, Kubernetes, the RabbitMQ definitions) in ``tests/deploy``.

Adding a service is its package plus one row here (CONTRIBUTING.md).

Route patterns are whole path segments below ``/api/v1``; ``*`` stands for one segment (an
id). The most specific pattern wins: more segments first, then fewer wildcards, so
``/orders/*/contract`` (contracts) beats ``/orders`` (orders).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

API_PREFIX = "/api/v1"
EXCHANGE = "voucher.events"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    app: str  # "package.main:create_app"
    label: str = ""  # what a user reads when it is unavailable (身份服务暂不可用，请稍后重试)
    routes: tuple[str, ...] = ()
    # (method or "*", pattern) callable without a token. A token sent anyway is still checked
    # (and passed on, so a public page can show the caller's own figures).
    public: tuple[tuple[str, str], ...] = ()
    stats: tuple[str, ...] = ()  # the /portal/stats figures its /internal/stats fills
    consumes: tuple[str, ...] = ()  # event types its consumer handles (its queue's bindings)
    calls: tuple[str, ...] = ()  # services whose /internal/ endpoints it reads
    cli: str | None = None  # console script name
    # (pattern, bytes): routes that take a larger request body than the API's MAX_BODY_BYTES
    # (uploads, imports), as the gateway lets them through (:func:`body_limit`); at least
    # what the service itself accepts there, multipart framing included.
    body_limits: tuple[tuple[str, int], ...] = ()

    @property
    def package(self) -> str:
        return self.app.split(".", 1)[0]

    @property
    def env_prefix(self) -> str:
        return self.name.upper() + "_"


# Identity events every service that keeps its own copy of organisations consumes
# (common.orgs): who is certified, onboarded as a provider, suspended.
ORG_FACTS = (
    "identity.organization_certified",
    "identity.organization_suspended",
    "identity.organization_restored",
    "catalog.provider_approved",
)
# Rights identity took away (common.access): every service but identity, which records its own.
ACCESS_FACTS = ("identity.user_access_changed",)

SERVICES: tuple[Service, ...] = (
    Service(
        name="identity",
        label="身份服务",
        port=8001,
        app="identity.main:create_app",
        routes=(
            "/captcha",
            "/sms-codes",
            "/auth",
            "/me",
            "/files",
            "/identity-verifications",
            "/reference",
            "/admin/organizations",
            "/admin/staff",
            "/dev/captcha",
            "/dev/sms-codes",
            "/dev/identity-verifications",
        ),
        public=(
            ("GET", "/captcha"),
            ("POST", "/sms-codes"),
            ("POST", "/auth/register"),
            ("POST", "/auth/login"),
            ("POST", "/auth/refresh"),
            ("POST", "/auth/password/reset"),
            # The face vendor's page sends the phone's browser back here (no platform token).
            ("GET", "/identity-verifications"),
            # 支付认证's lookups: public reference data (regions, banks, branches).
            ("GET", "/reference"),
            ("*", "/dev"),
        ),
        stats=("enterprises", "providers"),
        consumes=("catalog.provider_approved",),
        cli="voucher-identity",
        body_limits=(("/files", 11 * MiB),),  # IDENTITY_MAX_UPLOAD_BYTES: 10 MiB and the framing
    ),
    Service(
        name="quota",
        label="服务券服务",
        port=8002,
        app="quota.main:create_app",
        routes=(
            "/campaigns",
            "/voucher-types",
            "/me/vouchers",
            "/me/quota-applications",
            "/vouchers",
            "/admin/campaigns",
            "/admin/quota-applications",
            "/admin/designations",
            "/admin/providers/*/subsidy-cap",
            "/admin/vouchers",
        ),
        public=(("GET", "/campaigns"), ("GET", "/voucher-types")),
        stats=("enterprises_with_quota", "quota_total_fen", "pending_budget_fen", "deducted_fen"),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "catalog.provider_approved",
            "orders.order_submitted",
            "orders.order_cancelled",
            "contracts.contract_signed",
            "contracts.contract_voided",
            "contracts.contract_terminated",
            "payments.settlement_paid",
        ),
        calls=("identity", "catalog"),
        cli="voucher-quota",
        body_limits=(("/admin/designations/import", 50 * MiB),),  # QUOTA_IMPORT_MAX_BYTES
    ),
    Service(
        name="catalog",
        label="服务产品服务",
        port=8003,
        app="catalog.main:create_app",
        routes=(
            "/products",
            "/providers",
            "/categories",
            "/me/provider-application",
            "/me/provider-profile",
            "/me/products",
            "/me/favorites",
            "/admin/provider-applications",
            "/admin/products",
        ),
        public=(("GET", "/products"), ("GET", "/providers"), ("GET", "/categories")),
        stats=("products",),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "catalog.provider_approved",
            "orders.order_submitted",
            "orders.order_completed",
            "orders.order_evaluated",
            "contracts.contract_signed",
        ),
        calls=("identity", "quota"),
        cli="voucher-catalog",
    ),
    Service(
        name="orders",
        label="订单服务",
        port=8004,
        app="orders.main:create_app",
        routes=("/orders", "/me/orders", "/me/service-orders", "/admin/orders"),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "catalog.provider_approved",
            "catalog.product_changed",
            "quota.voucher_reserved",
            "quota.voucher_reservation_rejected",
            "quota.voucher_released",
            "quota.voucher_deducted",
            "quota.voucher_reversed",
            "contracts.contract_submitted",
            "contracts.contract_returned",
            "contracts.contract_agreed",
            "contracts.contract_party_signed",
            "contracts.contract_signed",
            "contracts.contract_voided",
            "contracts.contract_terminated",
            "payments.payment_received",
            "payments.settlement_paid",
            "contracts.termination_requested",
            "contracts.termination_withdrawn",
            "contracts.cancellation_refused",
        ),
        calls=("catalog", "quota", "identity"),
        cli="voucher-orders",
    ),
    Service(
        name="contracts",
        label="合同服务",
        port=8005,
        app="contracts.main:create_app",
        routes=(
            "/orders/*/contract",
            "/contracts",
            "/me/seal",
            "/admin/contracts",
        ),
        # Anyone may check a contract PDF against the platform's signing CA.
        public=(("GET", "/contracts/ca-certificate"), ("POST", "/contracts/verify")),
        stats=("signed_contracts",),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "catalog.provider_approved",
            "orders.order_accepted",
            "orders.order_cancelled",
            "orders.cancellation_requested",
            "payments.payment_received",
            "payments.settlement_paid",
            "payments.termination_accepted",
            "payments.termination_refused",
            "orders.termination_agreed",
            "orders.termination_refused",
        ),
        calls=("identity",),
        cli="voucher-contracts",
        body_limits=(("/contracts/verify", 11 * MiB),),  # CONTRACTS_VERIFY_MAX_BYTES: at most 10 MB
    ),
    Service(
        name="payments",
        label="支付服务",
        port=8006,
        app="payments.main:create_app",
        routes=(
            "/orders/*/payment",
            "/orders/*/remittances",
            "/remittances",
            "/settlements",
            "/me/settlements",
            "/admin/remittances",
            "/admin/settlements",
            "/admin/refunds",
        ),
        stats=("settled_fen",),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "identity.bank_account_changed",
            "catalog.provider_approved",
            "contracts.contract_signed",
            "contracts.contract_voided",
            "contracts.contract_terminated",
            "orders.order_completed",
            "contracts.termination_requested",
            "contracts.termination_withdrawn",
            "orders.service_started",
            "orders.service_completed",
        ),
        calls=("identity",),
        cli="voucher-payments",
    ),
    Service(
        name="demands",
        label="需求服务",
        port=8007,
        app="demands.main:create_app",
        routes=(
            "/me/demands",
            "/demands",
            "/admin/demands",
            "/me/messages",
            "/admin/messages",
            "/notices",
            "/admin/notices",
            "/me/notifications",
        ),
        public=(("GET", "/demands"), ("GET", "/notices")),
        stats=("published_demands",),
        consumes=(
            "identity.organization_certified",
            "identity.organization_suspended",
            "identity.organization_restored",
            *ACCESS_FACTS,
            "catalog.provider_approved",
            # notifications: every event that needs a person (demands.domain.notifications.RULES)
            "orders.order_awaiting_acceptance",
            "orders.service_started",
            "orders.service_completed",
            "orders.order_completed",
            "contracts.contract_submitted",
            "contracts.contract_returned",
            "contracts.contract_agreed",
            "contracts.contract_signed",
            "payments.remittance_recorded",
            "payments.payment_received",
            "payments.remittance_rejected",
            "payments.settlement_approved",
            "payments.settlement_rejected",
            "payments.settlement_paid",
            "quota.application_approved",
            "quota.application_rejected",
            "catalog.provider_application_rejected",
            "catalog.product_reviewed",
        ),
        calls=("identity",),
        cli="voucher-demands",
    ),
)

# The portal (web/): a process of the platform but not a service (no database, no events, no
# API of its own). The gateway forwards every path outside /api/v1 (and its own operations
# paths) to it; all-in-one makes it in the gateway's process.
PORTAL = Service(name="web", port=8008, app="web.main:create_app", label="门户")

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no service {name!r} in the registry ({', '.join(NAMES)})") from None


# --- routing -----------------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def matches(pattern: str, path: str) -> bool:
    """Does ``path`` (below /api/v1) start with the whole segments of ``pattern``?"""
    want, have = _segments(pattern), _segments(path)
    if len(have) < len(want):
        return False
    return all(w == "*" or w == h for w, h in zip(want, have, strict=False))


def _specificity(pattern: str) -> tuple[int, int]:
    segs = _segments(pattern)
    return (len(segs), -segs.count("*"))


def route_table(services: Iterable[Service] = SERVICES) -> list[tuple[str, str]]:
    """(pattern, service), most specific first."""
    rows = [(p, s.name) for s in services for p in s.routes]
    seen: dict[str, str] = {}
    for pattern, name in rows:
        if pattern in seen and seen[pattern] != name:
            raise ValueError(f"route {pattern} claimed by {seen[pattern]} and {name}")
        seen[pattern] = name
    return sorted(seen.items(), key=lambda r: _specificity(r[0]), reverse=True)


def body_limit_table(services: Iterable[Service] = SERVICES) -> list[tuple[str, int]]:
    """(pattern, bytes) the services declared for larger request bodies, most specific first."""
    rows = [(p, limit) for s in services for p, limit in s.body_limits]
    return sorted(rows, key=lambda r: _specificity(r[0]), reverse=True)


_BODY_LIMITS = body_limit_table()


def body_limit(path: str, table: list[tuple[str, int]] = _BODY_LIMITS) -> int | None:
    """The request-body limit a service declared for ``path`` (below /api/v1; the most
    specific pattern that matches), or None: the API's own MAX_BODY_BYTES."""
    return next((limit for pattern, limit in table if matches(pattern, path)), None)


def public_paths(services: Iterable[Service] = SERVICES) -> tuple[tuple[str, str], ...]:
    return tuple(p for s in services for p in s.public)


def stat_fields(services: Iterable[Service] = SERVICES) -> dict[str, tuple[str, ...]]:
    return {s.name: s.stats for s in services if s.stats}


# --- reaching another service ------------------------------------------------------------------


def default_url(name: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{service(name).port}"


# --- the RabbitMQ topology ---------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    exchange: str
    # consuming service -> its bound event types
    bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def consumers_of(self, event_type: str) -> list[str]:
        return sorted(name for name, types in self.bindings.items() if event_type in types)

    @property
    def event_types(self) -> list[str]:
        return sorted({t for types in self.bindings.values() for t in types})


def topology(exchange: str = EXCHANGE, services: Iterable[Service] = SERVICES) -> Topology:
    return Topology(exchange, {s.name: tuple(sorted(s.consumes)) for s in services if s.consumes})
