"""catalog's settings (env prefix ``CATALOG_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings

# Phrasing a listing may not use (the pre-review flags it for the reviewer): promises of a
# result nobody can promise, services the voucher does not pay for.
DEFAULT_BANNED_PHRASES = [
    "包过",
    "保过",
    "代办",
    "旅游",
    "考察游",
    "返现",
    "返利",
    "包退款",
    "零风险",
    "100%通过",
]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "catalog"

    banned_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_BANNED_PHRASES))
    # Ask quota for the caller's voucher preview on a product's detail page (券后价).
    voucher_preview: bool = True
