"""The portal's one client of the gateway's public API (``/api/v1``), as any client app calls it.

:class:`ApiClient` is shared by the whole process (one pooled httpx client). :class:`Api` is
that client bound to one browser's session: it sends the session's access token, refreshes it
transparently (shortly before it expires, or once when the API says it has), and turns every
problem document (RFC 9457) into an :class:`ApiError` whose ``detail`` and field ``errors`` the
pages show as they are.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from common.http import no_cookie_jar
from web.session import Session

# Refresh an access token this many seconds before it runs out, so a page never fails on it.
REFRESH_AHEAD_SECONDS = 30
# A token lacks a capability the organisation gained after it was issued (企业信息认证, the
# provider approval): the answer to renew it for.
CAPABILITY_CODES = frozenset({"enterprise_required", "provider_required"})
API_PREFIX = "/api/v1"


@dataclass
class ApiError(Exception):
    """A problem the API answered (or the portal could not reach it)."""

    status: int
    code: str
    detail: str
    errors: dict[str, str] = field(default_factory=dict)  # field -> message
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors: dict[str, str] = {}
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("field"):
                name = str(item["field"]).split(".")[-1]
                errors.setdefault(name, str(item.get("message") or "输入有误"))
        retry = response.headers.get("retry-after")
        return cls(
            status=response.status_code,
            code=str(body.get("code") or f"http_{response.status_code}"),
            detail=str(body.get("detail") or body.get("title") or "请求未能完成，请稍后重试"),
            errors=errors,
            retry_after=int(retry) if retry and retry.isdigit() else None,
        )


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("code")) if isinstance(body, dict) else None


class NotSignedIn(Exception):
    """The page needs a signed-in user and the session has none (or it could not be renewed)."""


def unreachable(exc: Exception) -> ApiError:
    return ApiError(503, "api_unreachable", "平台服务暂时无法访问，请稍后重试")


class ApiClient:
    def __init__(
        self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API_PREFIX,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            cookies=no_cookie_jar(),  # one client for every browser: it must remember nobody
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        client_ip: str | None = None,
    ) -> httpx.Response:
        h = dict(headers or {})
        if client_ip:
            # One portal speaks for many browsers: the gateway counts each by its own address
            # (it believes this header as far as GATEWAY_TRUSTED_PROXY_HOPS says).
            h["X-Forwarded-For"] = client_ip
        if token:
            h["Authorization"] = f"Bearer {token}"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            return await self.http.request(method, path, json=json, params=clean, files=files, headers=h)
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc

    @asynccontextmanager
    async def stream(
        self, path: str, *, token: str, last_event_id: str | None
    ) -> AsyncIterator[httpx.Response]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        request = self.http.build_request("GET", path, headers=headers, timeout=httpx.Timeout(5.0, read=90.0))
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
        try:
            yield response
        finally:
            await response.aclose()


class Api:
    """The API as one browser's session sees it."""

    def __init__(self, client: ApiClient, session: Session, client_ip: str | None = None) -> None:
        self.client = client
        self.session = session
        self.client_ip = client_ip

    @property
    def signed_in(self) -> bool:
        return self.session.signed_in

    async def token(self) -> str:
        if not self.session.signed_in:
            raise NotSignedIn
        if self.session.access_expires_at - time.time() < REFRESH_AHEAD_SECONDS:
            await self.refresh()
        return self.session.access_token or ""

    async def refresh(self) -> None:
        refresh_token = self.session.refresh_token
        if not refresh_token:
            raise NotSignedIn
        response = await self.client.send(
            "POST", "/auth/refresh", json={"refresh_token": refresh_token}, client_ip=self.client_ip
        )
        if response.status_code != 200:
            self.session.sign_out()
            raise NotSignedIn
        self.session.sign_in(response.json())
        await self.load_me()

    async def load_me(self) -> dict[str, Any]:
        """Who the user is and their organisation, kept in the session for the menus."""
        me = await self.request("GET", "/me")
        self.session.set_me(me)
        return me

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        """The answer's JSON (None when empty); an :class:`ApiError` for a problem.

        ``auth`` sends the token when the session has one (public pages show a signed-in
        enterprise its own figures); a page that needs a user checks ``signed_in`` first."""
        token = await self.token() if auth and self.session.signed_in else None
        response = await self.client.send(
            method,
            path,
            token=token,
            json=json,
            params=params,
            files=files,
            headers=headers,
            client_ip=self.client_ip,
        )
        if token is not None and (
            response.status_code == 401
            or (response.status_code == 403 and _code(response) in CAPABILITY_CODES)
        ):
            # Expired between our check and the service's, or revoked; or issued before the
            # organisation was certified or onboarded: one renewal, one retry.
            await self.refresh()
            response = await self.client.send(
                method,
                path,
                token=self.session.access_token,
                json=json,
                params=params,
                files=files,
                headers=headers,
                client_ip=self.client_ip,
            )
            if response.status_code == 401:
                self.session.sign_out()
                raise NotSignedIn
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request("POST", path, json=json if json is not None else {}, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request("PUT", path, json=json if json is not None else {}, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)

    async def upload(self, name: str, content: bytes, content_type: str) -> dict[str, Any]:
        """POST /files: the stored file's ``{file_id, name, ...}``."""
        result: dict[str, Any] = await self.request(
            "POST", "/files", files={"file": (name, content, content_type or "application/octet-stream")}
        )
        return result

    async def raw(self, path: str) -> httpx.Response:
        """A non-JSON answer (a file, a PDF, an image) as it came, for the portal to pass on."""
        token = await self.token() if self.session.signed_in else None
        response = await self.client.send("GET", path, token=token, client_ip=self.client_ip)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response
