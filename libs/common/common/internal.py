"""Calls to other services' ``/internal/`` endpoints: the few synchronous reads DESIGN.md
allows (a product's price at order time, a file's owner, a voucher preview), never a saga step.

Where a service is reached comes from the registry: ``SERVICE_URLS`` (JSON, name -> base URL)
when set, else ``http://127.0.0.1:<registry port>``. In all-in-one mode the launcher hands
every service the mounted apps (``peers``): the call then stays in the process (httpx's ASGI
transport), same code path otherwise. Every call carries a short-lived service token.
Reads are retried briefly (tenacity); a service that cannot answer is a 503 problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common import registry
from common.auth import ServiceTokenAuth
from common.errors import Problem, dependency_unavailable

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


def _label(service: str) -> str:
    known = registry.BY_NAME.get(service)
    return known.label if known is not None and known.label else service


def unavailable(service: str) -> Problem:
    return dependency_unavailable(service, _label(service))


class ServiceClients:
    def __init__(
        self,
        caller: str,
        secret: str,
        *,
        urls: Mapping[str, str] | None = None,
        peers: Mapping[str, ASGIApp] | None = None,
        clients: Mapping[str, httpx.AsyncClient] | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
    ) -> None:
        """``clients``: ready-made clients by service (the gateway's pooled upstreams), used
        as they are, the service token and the timeout sent with each request, and left to
        their owner to close."""
        self.caller = caller
        self.auth = ServiceTokenAuth(secret, caller)
        self.urls = dict(urls or {})
        # Shared with the launcher, which fills it as it creates the apps: look up late.
        self.peers = peers
        self.timeout = timeout
        self.attempts = attempts
        self._given = dict(clients or {})
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, name: str) -> httpx.AsyncClient:
        if name in self._given:
            return self._given[name]
        if name not in self._clients:
            if self.peers is not None and name in self.peers:
                transport: httpx.AsyncBaseTransport = httpx.ASGITransport(
                    app=self.peers[name], client=("127.0.0.1", 0)
                )
                base = f"http://{name}"
            else:
                transport = httpx.AsyncHTTPTransport()
                base = self.urls.get(name) or registry.default_url(name)
            self._clients[name] = httpx.AsyncClient(
                transport=transport, base_url=base.rstrip("/"), auth=self.auth, timeout=self.timeout
            )
        return self._clients[name]

    async def get(self, name: str, path: str, **params: Any) -> httpx.Response:
        """GET ``path`` of service ``name`` (retried on connection errors); 5xx and transport
        failures become a 503 problem; other statuses are the caller's to read."""
        query = {k: v for k, v in params.items() if v is not None}
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                wait=wait_exponential(multiplier=0.1, max=1),
                stop=stop_after_attempt(self.attempts),
                reraise=True,
            ):
                with attempt:
                    response = await self.client(name).get(
                        path, params=query, auth=self.auth, timeout=self.timeout
                    )
        except httpx.HTTPError as exc:
            log.warning("internal_call_failed", service=name, path=path, error=type(exc).__name__)
            raise unavailable(name) from exc
        if response.status_code >= 500:
            log.warning("internal_call_failed", service=name, path=path, status=response.status_code)
            raise unavailable(name)
        return response

    async def get_json(self, name: str, path: str, **params: Any) -> Any | None:
        """The JSON body, or None for a 404. An answer that is not JSON is the 503 problem."""
        response = await self.get(name, path, **params)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            log.warning("internal_call_refused", service=name, path=path, status=response.status_code)
            raise unavailable(name)
        try:
            return response.json()
        except ValueError as exc:  # not JSON (a proxy's error page): it cannot answer now
            log.warning("internal_answer_malformed", service=name, path=path, error="not_json")
            raise unavailable(name) from exc

    async def read(self, name: str, path: str, model: type[M], **params: Any) -> M | None:
        """The answer as its contract's model (``common.reads``), or None for a 404. An answer
        that is not the contract is a service that cannot answer now (the 503 problem)."""
        doc = await self.get_json(name, path, **params)
        if doc is None:
            return None
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            log.warning("internal_answer_malformed", service=name, path=path, errors=exc.error_count())
            raise unavailable(name) from exc

    async def post(self, name: str, path: str, json: Any) -> httpx.Response:
        try:
            response = await self.client(name).post(path, json=json)
        except httpx.HTTPError as exc:
            raise unavailable(name) from exc
        if response.status_code >= 500:
            raise unavailable(name)
        return response

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
