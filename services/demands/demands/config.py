"""demands's settings (env prefix ``DEMANDS_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMANDS_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "demands"
