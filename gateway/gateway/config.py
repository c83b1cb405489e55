"""Gateway settings (env prefix ``GATEWAY_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, create_model
from pydantic_settings import SettingsConfigDict

from common import registry
from common.settings import ServiceSettings, shared


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "gateway"

    port: int = 8000
    # The gateway's database holds the shared rate-limit counters: a smaller pool than a
    # service's (DB_MAX_OVERFLOW and DB_READ_POOL_SIZE as for every process).
    db_pool_size: int = shared("DB_POOL_SIZE", default=5, ge=1, le=100)
    # The portal (common.registry.PORTAL): every path outside /api/v1 and the gateway's own
    # operations paths goes to it; unset, those paths are the gateway's 404.
    web_url: str | None = None
    # What a portal request may carry (its forms upload receipts, invoices, proofs).
    web_max_body_bytes: int = 25 * 1024 * 1024
    upstream_timeout: float = 30.0
    upstream_connect_timeout: float = 3.0
    upstream_max_connections: int = 200
    # An event stream (a user's live notifications, a heartbeat every 15 s) is not held to
    # upstream_timeout: it ends when the service sends nothing for this long. Its connections
    # come from a pool of their own, at most upstream_max_streams per service.
    upstream_stream_idle_timeout: float = 60.0
    upstream_max_streams: int = 1000

    # Requests per minute, counted per client address and per signed-in user, shared by
    # every gateway replica through PostgreSQL.
    rate_limit_per_ip: int = 1200
    rate_limit_per_user: int = 600
    rate_limit_window_seconds: int = 60
    # Tighter limits per client address for the public routes that cost the most
    # (routes.TIGHT): the face vendor's return page, the contract verification.
    rate_limit_face_return_per_ip: int = Field(default=30, ge=1)
    rate_limit_contract_verify_per_ip: int = Field(default=10, ge=1)
    rate_limit_sync_interval: float = 0.5
    # How many proxies in front of the gateway may be trusted for X-Forwarded-For.
    trusted_proxy_hops: int = 0

    stats_cache_seconds: float = 15.0

    def upstreams(self) -> dict[str, str]:
        return {n: url.rstrip("/") for n in registry.NAMES if (url := getattr(self, f"{n}_url", None))}


# Where each service listens (distributed mode): one ``<service>_url`` field per registry row
# (GATEWAY_<SERVICE>_URL), derived from the registry, so a new row is routed once its URL is
# set, with no field to add here. A service without a URL is not routed; identity's defaults
# to the local one (the gateway reads its JWKS).
DEFAULT_URLS = {"identity": "http://127.0.0.1:8001"}
if TYPE_CHECKING:
    Settings = _Settings
else:
    Settings = create_model(
        "Settings",
        __base__=_Settings,
        __module__=__name__,
        **{f"{svc.name}_url": (str | None, DEFAULT_URLS.get(svc.name)) for svc in registry.SERVICES},
    )
