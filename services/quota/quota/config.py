"""quota's settings (env prefix ``QUOTA_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings

DAY = 24 * 3600


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUOTA_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "quota"

    # General-voucher subsidies one provider may receive per year (500万元, "in principle":
    # administrators raise one provider's cap with a recorded reason).
    default_provider_cap_fen: int = 500_000_000
    # After a window closes, orders submitted inside it that reach quota late (a lagging relay
    # or consumer) still reserve for this long; then the unreserved remainder expires.
    voucher_expiry_grace_seconds: float = Field(default=DAY, ge=0)
    # Designation lists may hold tens of thousands of rows.
    import_max_bytes: int = 50 * 1024 * 1024
