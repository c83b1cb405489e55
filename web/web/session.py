"""The browser's session: one HttpOnly, SameSite=Lax cookie (Secure outside development)
holding the tokens, encrypted and authenticated with Fernet (AES-CBC + HMAC) under a key
derived from ``WEB_SESSION_SECRET``. Nothing is kept server-side, so any portal replica can
serve any request; the browser never sees a token (scripts cannot read the cookie, and what
it holds is unreadable without the secret).

Each session also carries its CSRF token (every state-changing form sends it back) and the
one-time messages shown after a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Session:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data or {}
        self.modified = False
        if "csrf" not in self.data:
            self.data["csrf"] = secrets.token_urlsafe(24)
            self.modified = True

    # --- the user -------------------------------------------------------------------------
    @property
    def signed_in(self) -> bool:
        return bool(self.data.get("refresh"))

    @property
    def access_token(self) -> str | None:
        return self.data.get("access")

    @property
    def refresh_token(self) -> str | None:
        return self.data.get("refresh")

    @property
    def access_expires_at(self) -> float:
        return float(self.data.get("exp", 0))

    def sign_in(self, tokens: dict[str, Any]) -> None:
        self.data["access"] = tokens["access_token"]
        self.data["refresh"] = tokens["refresh_token"]
        self.data["exp"] = time.time() + int(tokens.get("expires_in", 900))
        if tokens.get("user"):
            self.data.setdefault("me", {})["user"] = tokens["user"]
        self.modified = True

    def sign_out(self) -> None:
        for key in ("access", "refresh", "exp", "me"):
            self.data.pop(key, None)
        self.data["csrf"] = secrets.token_urlsafe(24)  # a new session, a new token
        self.modified = True

    def set_me(self, me: dict[str, Any]) -> None:
        self.data["me"] = {"user": me.get("user") or {}, "organization": me.get("organization")}
        self.data["me_at"] = time.time()
        self.modified = True

    def me_older_than(self, seconds: float) -> bool:
        """The menus' copy of /me (suspended, certified, provider) is read again this often."""
        return time.time() - float(self.data.get("me_at", 0)) > seconds

    @property
    def user(self) -> dict[str, Any]:
        return dict((self.data.get("me") or {}).get("user") or {})

    @property
    def organization(self) -> dict[str, Any] | None:
        org = (self.data.get("me") or {}).get("organization")
        return dict(org) if org else None

    @property
    def role(self) -> str:
        return str(self.user.get("role") or "")

    @property
    def is_staff(self) -> bool:
        return self.role in ("reviewer", "finance", "administrator")

    def capable(self, capability: str) -> bool:
        org = self.organization or {}
        return capability in (org.get("capabilities") or [])

    # --- CSRF and messages ----------------------------------------------------------------
    @property
    def csrf(self) -> str:
        return str(self.data["csrf"])

    def csrf_ok(self, value: str | None) -> bool:
        return bool(value) and secrets.compare_digest(str(value), self.csrf)

    def flash(self, message: str, kind: str = "success") -> None:
        self.data.setdefault("flash", []).append([kind, message])
        self.modified = True

    def take_flashes(self) -> list[tuple[str, str]]:
        items = self.data.pop("flash", [])
        if items:
            self.modified = True
        return [(k, m) for k, m in items]


class SessionCodec:
    def __init__(self, secret: str, max_age: int) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(b"voucher-web-session:" + secret.encode()).digest())
        self.fernet = Fernet(key)
        self.max_age = max_age

    def dumps(self, session: Session) -> str:
        return self.fernet.encrypt(json.dumps(session.data, separators=(",", ":")).encode()).decode()

    def loads(self, cookie: str | None) -> Session:
        if not cookie:
            return Session()
        try:
            data = json.loads(self.fernet.decrypt(cookie.encode(), ttl=self.max_age))
        except (InvalidToken, ValueError):
            return Session()
        return Session(data if isinstance(data, dict) else None)


class SessionMiddleware:
    """Puts ``scope["session"]`` (a :class:`Session`) on every request and writes the cookie
    back when the request changed it."""

    def __init__(self, app: ASGIApp, *, codec: SessionCodec, cookie: str, secure: bool) -> None:
        self.app = app
        self.codec = codec
        self.cookie = cookie
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self.codec.loads(HTTPConnection(scope).cookies.get(self.cookie))
        scope["portal_session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.modified:
                headers = MutableHeaders(scope=message)
                value = self.codec.dumps(session)
                attrs = f"Path=/; Max-Age={self.codec.max_age}; HttpOnly; SameSite=Lax"
                if self.secure:
                    attrs += "; Secure"
                headers.append("Set-Cookie", f"{self.cookie}={value}; {attrs}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)
