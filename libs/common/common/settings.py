"""Settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own env prefix (``IDENTITY_``,
``QUOTA_``...). What the whole deployment shares (the environment, the broker, the
PostgreSQL server, the service-token secret) is read without a prefix, so one env file
configures every process alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SERVICE_TOKEN_SECRET = "development-only-service-token-secret-not-for-production"
# How long an Idempotency-Key claim holds its key before a retry may take it over
# (common.idempotency); the database's statement and lock timeouts stay well under it.
LEASE_SECONDS = 60.0
# HMAC-SHA256 wants a key as long as its output: a shorter secret is guessable offline from
# one captured service token. `secrets.token_urlsafe(32)` gives 43 characters.
MIN_SECRET_CHARS = 32


def shared(name: str, **kwargs: Any) -> Any:
    """A field read from an unprefixed environment variable shared by all services."""
    return Field(validation_alias=AliasChoices(name), **kwargs)


class ServiceSettings(BaseSettings):
    # A refused start names the wrong settings and never shows their values: pydantic would
    # print the whole input (every setting read, the passwords in AMQP_URL and POSTGRES_URL
    # among them) in the message a failed start logs. Services' configs inherit this.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    service_name: ClassVar[str] = "service"

    environment: str = shared("ENVIRONMENT", default="production")
    # A whole URL for this service's database; else the shared server URL + the service name.
    database_url: str | None = None
    postgres_url: str = shared("POSTGRES_URL", default="postgresql://postgres@127.0.0.1:5432")
    amqp_url: str = shared("AMQP_URL", default="amqp://guest:guest@127.0.0.1:5672/")
    bus_transport: Literal["rabbitmq", "inprocess"] = shared("BUS_TRANSPORT", default="rabbitmq")
    # Tests give every run its own exchange and queue names; production keeps the defaults.
    bus_exchange: str = shared("BUS_EXCHANGE", default="voucher.events")
    bus_queue_prefix: str = shared("BUS_QUEUE_PREFIX", default="")
    # Delays (seconds) between redeliveries of a failing event; its length is the number of
    # retries before the event is parked in the dead-letter queue.
    bus_retry_delays: list[float] = shared("BUS_RETRY_DELAYS", default=[1, 5, 30, 120, 600])
    bus_publish_timeout: float = shared("BUS_PUBLISH_TIMEOUT", default=5.0)
    outbox_poll_interval: float = shared("OUTBOX_POLL_INTERVAL", default=1.0)
    # Seconds a statement may wait for a lock / run before PostgreSQL cancels it: well under
    # an Idempotency-Key claim's lease (LEASE_SECONDS, 60 s), so a command
    # is not still waiting when a retry may take its key over.
    db_lock_timeout: float = shared("DB_LOCK_TIMEOUT", default=10.0, gt=0)
    db_statement_timeout: float = shared("DB_STATEMENT_TIMEOUT", default=30.0, gt=0)
    # Connections a process keeps to its database, and how many more it may open at a peak
    # (unset: as many again); reads that need no transaction have a pool of their own
    # (unset: half the writers', at least one; its peak is capped like the writers'). Every
    # process of every service shares the server's max_connections: ``db_max_connections``
    # is what one process's pools may hold at most (deploy/README's connection budget; a
    # service process also keeps its outbox relay's LISTEN connection, one more, and
    # opens one for its migrations at start).
    db_pool_size: int = shared("DB_POOL_SIZE", default=10, ge=1, le=100)
    db_max_overflow: int | None = shared("DB_MAX_OVERFLOW", default=None, ge=0, le=100)
    db_read_pool_size: int | None = shared("DB_READ_POOL_SIZE", default=None, ge=1, le=100)
    timer_poll_interval: float = shared("TIMER_POLL_INTERVAL", default=1.0)
    # Seconds between two reads of the revoked tokens (common.access) into each process.
    revocation_poll_interval: float = shared("REVOCATION_POLL_INTERVAL", default=1.0, gt=0)
    service_token_secret: str = shared("SERVICE_TOKEN_SECRET", default="")
    # Where the other services' /internal/ endpoints are (name -> base URL); a service not
    # named here is at http://127.0.0.1:<its registry port> (common.internal).
    service_urls: dict[str, str] = shared("SERVICE_URLS", default={})
    jwks_url: str = shared("IDENTITY_JWKS_URL", default="http://127.0.0.1:8001/.well-known/jwks.json")
    jwt_issuer: str = shared("JWT_ISSUER", default="voucher-identity")
    jwt_audience: str = shared("JWT_AUDIENCE", default="voucher-platform")
    max_body_bytes: int = shared("MAX_BODY_BYTES", default=1_048_576)
    log_level: str = shared("LOG_LEVEL", default="INFO")
    # None: JSON lines unless the output is a terminal (readable lines for make run).
    log_json: bool | None = shared("LOG_JSON", default=None)
    run_migrations: bool = True
    # Operations endpoints in production: /metrics answers only a bearer of METRICS_TOKEN
    # (404 to everyone without one, and to all when it is unset); /docs only with
    # PUBLIC_DOCS=true. Development keeps both open.
    metrics_token: str | None = shared("METRICS_TOKEN", default=None)
    public_docs: bool = shared("PUBLIC_DOCS", default=False)
    # Development only (make run): the service seeds its part of the demo data at start.
    seed_demo: bool = False

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def guarded_paths(self) -> dict[str, str | None]:
        """Path -> the bearer token that opens it (None: closed), for RequestContextMiddleware."""
        if self.is_development:
            return {}
        guarded: dict[str, str | None] = {"/metrics": self.metrics_token or None}
        if not self.public_docs:
            guarded.update(dict.fromkeys(("/docs", "/docs/oauth2-redirect", "/redoc")))
        return guarded

    @property
    def db_pools(self) -> DbPools:
        """The sizes of this process's connection pools, from DB_POOL_SIZE, DB_MAX_OVERFLOW and
        DB_READ_POOL_SIZE."""
        return DbPools.of(self.db_pool_size, self.db_max_overflow, self.db_read_pool_size)

    @property
    def db_max_connections(self) -> int:
        """The most connections one process of this service may hold in its pools."""
        return self.db_pools.max_connections

    @property
    def queue_name(self) -> str:
        return f"{self.bus_queue_prefix}{self.service_name}"

    @property
    def db_url(self) -> str:
        """The asyncpg URL of this service's own database."""
        if self.database_url:
            return to_asyncpg_url(self.database_url)
        return to_asyncpg_url(database_in(self.postgres_url, self.service_name))

    @model_validator(mode="after")
    def _timeouts_under_the_lease(self) -> ServiceSettings:
        if self.db_statement_timeout > LEASE_SECONDS / 2:
            raise ValueError(
                f"DB_STATEMENT_TIMEOUT ({self.db_statement_timeout:g} s) must stay well under the "
                f"Idempotency-Key lease ({LEASE_SECONDS:g} s): at most half of it"
            )
        if self.db_lock_timeout > self.db_statement_timeout:
            raise ValueError("DB_LOCK_TIMEOUT must not exceed DB_STATEMENT_TIMEOUT")
        return self

    @model_validator(mode="after")
    def _secrets_for_environment(self) -> ServiceSettings:
        if self.seed_demo and not self.is_development:
            prefix = str(self.model_config.get("env_prefix", ""))
            raise ValueError(f"{prefix}SEED_DEMO is refused outside ENVIRONMENT=development")
        if not self.service_token_secret:
            if not self.is_development:
                raise ValueError("SERVICE_TOKEN_SECRET must be set outside ENVIRONMENT=development")
            self.service_token_secret = DEV_SERVICE_TOKEN_SECRET
        elif self.service_token_secret == DEV_SERVICE_TOKEN_SECRET and not self.is_development:
            raise ValueError("the development service-token secret cannot be used in production")
        elif len(self.service_token_secret) < MIN_SECRET_CHARS and not self.is_development:
            raise ValueError(
                f"SERVICE_TOKEN_SECRET is too short: at least {MIN_SECRET_CHARS} characters outside "
                "ENVIRONMENT=development"
            )
        return self


@dataclass(frozen=True)
class DbPools:
    """A process's two pools (common.db.Database): the writers' (sessions in a transaction)
    and the readers' (``read_session``), each a size kept open and an overflow opened at a
    peak and closed after it."""

    size: int
    overflow: int
    read_size: int
    read_overflow: int

    @classmethod
    def of(cls, size: int, overflow: int | None = None, read_size: int | None = None) -> DbPools:
        overflow = size if overflow is None else overflow
        read_size = max(1, size // 2) if read_size is None else read_size
        return cls(size, overflow, read_size, min(read_size, overflow))

    @property
    def max_connections(self) -> int:
        return self.size + self.overflow + self.read_size + self.read_overflow


def database_in(server_url: str, database: str) -> str:
    """``postgresql://u@h:5432`` (or one naming any database) -> the same server, ``database``."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, ""))


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def to_plain_url(url: str) -> str:
    """The libpq / asyncpg form of a SQLAlchemy URL (no ``+driver``)."""
    return "postgresql://" + url.split("://", 1)[1]
