"""The caller's address behind one TLS-terminating reverse proxy (docker-compose.yml's caddy,
GATEWAY_TRUSTED_PROXY_HOPS=1 in deploy/env/production.env), over real HTTP: the gateway
process as deployed, a proxy in front of it that appends the address it saw to
X-Forwarded-For (what nginx's ``$proxy_add_x_forwarded_for`` does; Caddy even replaces the
header), and an identity stand-in behind it that records what it is told.

A caller may send its own X-Forwarded-For to the proxy: it must not choose its address by it.
With one trusted hop the gateway believes the last entry only, the one the proxy appended."""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from common.http import client_ip
from common.testing.processes import free_port, running


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass


def identity_stand_in(seen: list[str | None]) -> type[BaseHTTPRequestHandler]:
    class Identity(_Quiet):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-Forwarded-For"))
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Identity


def appending_proxy(upstream_port: int) -> type[BaseHTTPRequestHandler]:
    """One reverse-proxy hop: forwards to the gateway, appending the peer's address to
    whatever X-Forwarded-For the client sent."""

    class Proxy(_Quiet):
        def do_GET(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            sent = self.headers.get("X-Forwarded-For")
            peer = self.client_address[0]
            headers["X-Forwarded-For"] = f"{sent}, {peer}" if sent else peer
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
            try:
                upstream.request("GET", self.path, headers=headers)
                response = upstream.getresponse()
                body = response.read()
            finally:
                upstream.close()
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Proxy


def from_address(local: str, proxy_port: int) -> httpx.AsyncClient:
    """A client whose connections leave from ``local`` (any 127.x address is this host)."""
    transport = httpx.AsyncHTTPTransport(local_address=local)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy_port}", transport=transport, timeout=10)


@asynccontextmanager
async def gateway_behind_a_proxy(
    hops: int, fresh_db: Callable[[str], Awaitable[str]], logs: Path, seen: list[str | None]
) -> AsyncIterator[int]:
    """The gateway as its own process (3 requests per address allowed) behind one appending
    proxy, identity a stand-in recording the X-Forwarded-For it gets; the proxy's port."""
    gateway_port = free_port()
    with serving(identity_stand_in(seen)) as identity_port, serving(appending_proxy(gateway_port)) as proxy:
        env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "GATEWAY_DATABASE_URL": await fresh_db("gateway"),
            "GATEWAY_TRUSTED_PROXY_HOPS": str(hops),
            "GATEWAY_RATE_LIMIT_PER_IP": "3",
            "GATEWAY_IDENTITY_URL": f"http://127.0.0.1:{identity_port}",
        }
        with running(env, logs) as processes:
            processes.start("gateway", "gateway.main:create_app", gateway_port)
            yield proxy


async def test_behind_one_proxy_the_gateway_takes_the_address_the_proxy_saw_not_a_forged_one(
    fresh_db: Callable[[str], Awaitable[str]], tmp_path: Path
) -> None:
    seen: list[str | None] = []
    async with gateway_behind_a_proxy(1, fresh_db, tmp_path / "logs", seen) as proxy:
        async with from_address("127.0.0.2", proxy) as mallory, from_address("127.0.0.3", proxy) as alice:
            # Mallory names a new address in every request, hoping for a fresh budget each.
            forged = [
                (await mallory.get("/api/v1/captcha", headers={"X-Forwarded-For": f"203.0.113.{n}"}))
                for n in range(5)
            ]
            # ...and Alice, behind the same proxy, keeps her own budget.
            honest = await alice.get("/api/v1/captcha")

    assert [r.status_code for r in forged] == [200, 200, 200, 429, 429]
    assert forged[3].json()["code"] == "rate_limited"
    assert honest.status_code == 200
    # identity (IDENTITY_TRUSTED_PROXY_HOPS=1: the gateway) reads the same address the
    # gateway counted: the one the proxy saw, never the one the caller wrote.
    assert len(seen) == 4
    assert [client_ip({"headers": [(b"x-forwarded-for", h.encode())]}, 1) for h in seen if h] == [
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
    ]
    assert all("203.0.113" not in (h or "").rsplit(",", 1)[-1] for h in seen)


async def test_without_a_trusted_hop_every_caller_behind_the_proxy_shares_its_address(
    fresh_db: Callable[[str], Awaitable[str]], tmp_path: Path
) -> None:
    """Why GATEWAY_TRUSTED_PROXY_HOPS must match the proxies in front: left at 0 behind one,
    the gateway counts every caller under the proxy's address, and one caller's limit is
    everybody's."""
    async with gateway_behind_a_proxy(0, fresh_db, tmp_path / "logs", []) as proxy:
        async with from_address("127.0.0.2", proxy) as one, from_address("127.0.0.3", proxy) as other:
            first = [(await one.get("/api/v1/captcha")).status_code for _ in range(3)]
            blocked = await other.get("/api/v1/captcha")

    assert first == [200, 200, 200]
    assert blocked.status_code == 429, "the other caller pays for the first one's requests"
