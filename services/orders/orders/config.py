"""orders's settings (env prefix ``ORDERS_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings

DAY = 24 * 3600


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "orders"

    # DESIGN.md "Time-outs": not accepted in 7 days -> cancelled; not signed 30 days after
    # acceptance -> orders asks contracts to void. Seconds, so tests run them in fractions.
    acceptance_timeout_seconds: float = Field(default=7 * DAY, gt=0)
    signing_timeout_seconds: float = Field(default=30 * DAY, gt=0)
