"""Portal settings (env prefix ``WEB_``; the shared ones, ENVIRONMENT and LOG_LEVEL, unprefixed).

The portal owns no database and consumes no event: it needs only where the gateway's public
API is and the secret that seals its session cookies.
"""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import MIN_SECRET_CHARS, shared

DEV_SESSION_SECRET = "development-only-portal-session-secret-not-for-production"


class Settings(BaseSettings):
    # A refused start names the settings, never their values (common.settings.ServiceSettings).
    model_config = SettingsConfigDict(
        env_prefix="WEB_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: str = shared("ENVIRONMENT", default="production")
    log_level: str = shared("LOG_LEVEL", default="INFO")
    log_json: bool | None = shared("LOG_JSON", default=None)
    port: int = 8008
    # The gateway, whose /api/v1 the portal calls like any client app (all-in-one passes an
    # in-process transport instead and this is only the base URL's host).
    api_url: str = "http://127.0.0.1:8000"
    api_timeout: float = 30.0
    # Seals the session cookie (the tokens inside are encrypted and authenticated). Several
    # portal replicas share it; rotating it signs everybody out.
    session_secret: str = ""
    session_cookie: str = "voucher_session"
    # Seconds a session may stay idle: the refresh token's own lifetime ends it sooner.
    session_max_age: int = 7 * 24 * 3600
    # Secure cookies (https only) everywhere but development, where the portal is plain http.
    cookie_secure: bool | None = None
    # How many proxies in front of the portal may be trusted for X-Forwarded-For (the gateway
    # forwarding to a distributed portal is one).
    trusted_proxy_hops: int = 0

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def secure_cookies(self) -> bool:
        return (not self.is_development) if self.cookie_secure is None else self.cookie_secure

    @model_validator(mode="after")
    def _secret_for_environment(self) -> Settings:
        if not self.session_secret:
            if not self.is_development:
                raise ValueError("WEB_SESSION_SECRET must be set outside ENVIRONMENT=development")
            self.session_secret = DEV_SESSION_SECRET
        elif not self.is_development and (
            self.session_secret == DEV_SESSION_SECRET or len(self.session_secret) < MIN_SECRET_CHARS
        ):
            raise ValueError(f"WEB_SESSION_SECRET needs at least {MIN_SECRET_CHARS} characters of its own")
        return self
