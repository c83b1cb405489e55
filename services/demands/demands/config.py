"""demands's settings (env prefix ``DEMANDS_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMANDS_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "demands"

    # 站内通知 streams (GET /me/notifications/stream): a comment this often keeps an idle stream
    # open through proxies; the token is checked again this often (revoked or expired: the
    # stream ends); the live feed reads new notices when PostgreSQL's NOTIFY wakes it, and this
    # often anyway (a NOTIFY lost while its connection was down; all of it without LISTEN).
    notifications_heartbeat_seconds: float = Field(default=15.0, gt=0)
    notifications_check_seconds: float = Field(default=5.0, gt=0)
    notifications_poll_seconds: float = Field(default=5.0, gt=0)
    notifications_listen: bool = True
