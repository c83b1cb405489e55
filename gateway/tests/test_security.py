"""What an outside security probe of the gateway found (issue 6, section 2), each as a test
that failed before its fix."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from common.testing.processes import free_port, running

ROOT = Path(__file__).resolve().parents[2]


async def test_two_hundred_concurrent_requests_at_a_windows_start_keep_the_limit(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """Finding 3: the first requests of a window all wait for one shared read, then each is
    decided and counted without an await in between, so none slips past the limit."""
    app, _client = await make_gateway({}, rate_limit_per_ip=120)
    limiter = app.state.limiter
    now = limiter.window_start() + limiter.window + 0.5  # the first moment of a fresh window
    answers = await asyncio.gather(*(limiter.hit("ip:198.51.100.7", 120, now=now) for _ in range(200)))
    assert sum(a is None for a in answers) == 120
    assert all(a is not None and a >= 1 for a in answers[120:])


async def test_two_hundred_concurrent_clients_through_the_gateway_keep_the_limit(
    identity_app: FastAPI, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_ip=50)
    answers = await asyncio.gather(*(client.get("/api/v1/auth/none") for _ in range(200)))
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) == 150
    assert all(r.json()["code"] == "rate_limited" for r in limited)


async def test_a_spoofed_forwarded_for_from_loopback_counts_as_loopback(
    fresh_db: Callable[[str], Awaitable[str]], tmp_path: Path
) -> None:
    """Finding 4: with GATEWAY_TRUSTED_PROXY_HOPS=0, X-Forwarded-For is no one's word, even
    from the same host: the gateway process (started as deployed) counts the real address."""
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "GATEWAY_DATABASE_URL": await fresh_db("gateway"),
        "GATEWAY_TRUSTED_PROXY_HOPS": "0",
        "GATEWAY_RATE_LIMIT_PER_IP": "3",
        "GATEWAY_IDENTITY_URL": "http://127.0.0.1:9",
    }
    with running(env, tmp_path / "logs") as processes:
        url = processes.start("gateway", "gateway.main:create_app", free_port())
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            statuses = [
                (
                    await client.get("/api/v1/captcha", headers={"X-Forwarded-For": f"203.0.113.{n}"})
                ).status_code
                for n in range(5)
            ]
    assert statuses[:3] == [502] * 3  # identity is not there; the gateway forwarded
    assert statuses[3:] == [429, 429]


def test_the_container_entrypoint_lets_no_proxy_header_through(root: Path = ROOT) -> None:
    """Finding 4 in the images: uvicorn never rewrites the client address from headers."""
    script = (root / "deploy/entrypoint.sh").read_text()
    command = script[script.index("exec uvicorn") :]
    assert "--no-proxy-headers" in command and "--no-server-header" in command
    assert " --proxy-headers" not in command


async def test_an_out_of_range_date_is_a_422_at_the_gateway(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """Finding 5 at the gateway's composed audit log."""
    from common.testing.tokens import TestIssuer
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    issuer = TestIssuer()
    app = create_app(
        gateway_settings(await fresh_db("gateway")), upstreams=Upstreams.in_process({}), key_set=issuer.keys
    )
    staff = issuer.caller(role="administrator")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
            r = await c.get(
                "/api/v1/admin/audit-log", params={"since": "0001-01-01T00:00:00"}, headers=staff.headers
            )
            fine = await c.get(
                "/api/v1/admin/audit-log", params={"since": "2024-09-13"}, headers=staff.headers
            )
    assert r.status_code == 422 and "日期时间超出范围" in r.json()["detail"], r.text
    assert fine.status_code == 200, fine.text


async def test_production_gateway_keeps_docs_and_metrics_off_the_public_port(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """Finding 8: the merged /docs and /openapi.json only with PUBLIC_DOCS=true, /metrics only
    for a bearer of METRICS_TOKEN; every answer carries the security headers."""
    from common.auth import KeySet
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    database = await fresh_db("gateway")
    secret = {"service_token_secret": "s" * 40, "environment": "production"}
    closed = create_app(
        gateway_settings(database, metrics_token="t" * 40, **secret),
        upstreams=Upstreams.in_process({}),
        key_set=KeySet(),
    )
    async with closed.router.lifespan_context(closed):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=closed), base_url="http://gw") as c:
            for path in ("/docs", "/openapi.json", "/metrics"):
                r = await c.get(path)
                assert r.status_code == 404, path
                assert r.headers["x-frame-options"] == "DENY"
            assert (
                await c.get("/metrics", headers={"Authorization": "Bearer " + "t" * 40})
            ).status_code == 200
            stats = await c.get("/api/v1/portal/stats")
            assert stats.headers["cache-control"] == "no-store"
    public = create_app(
        gateway_settings(database, public_docs=True, **secret),
        upstreams=Upstreams.in_process({}),
        key_set=KeySet(),
    )
    async with public.router.lifespan_context(public):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=public), base_url="http://gw") as c:
            assert (await c.get("/docs")).status_code == 200
            assert (await c.get("/openapi.json")).status_code == 200
            assert (await c.get("/metrics")).status_code == 404


async def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written as bytes on a socket; the status, headers and body read back."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def test_an_oversized_request_line_or_header_block_is_a_problem_not_plain_text(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """The probe's 100 KB request line got uvicorn's '400 Invalid HTTP request received.' in
    plain text: uvicorn's parser refused it before the application. Served as the launcher
    and the image serve it (common.serving's protocol), each size is an RFC 9457 problem."""
    import json

    from common import serving

    from .conftest import served

    app, _client = await make_gateway({})
    async with served(app, http=serving.HTTP_PROTOCOL) as (url, _server):
        for size in (10_000, 100_000, 1_000_000):
            status, headers, body = await _raw(
                url, b"GET /api/v1/portal/stats?q=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert status == 414 and headers["content-type"] == "application/problem+json", (size, body[:200])
            assert json.loads(body)["code"] == "uri_too_long" and "过长" in json.loads(body)["detail"]
        big_header = b"X-Filler: " + b"b" * 40_000 + b"\r\n"
        status, headers, body = await _raw(
            url, b"GET /api/v1/portal/stats HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n"
        )
        assert status == 431 and json.loads(body)["code"] == "headers_too_large"
        status, headers, body = await _raw(url, b"NONSENSE\r\n\r\n")
        assert status == 400 and headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "bad_request"
        # an ordinary request on the same server is answered as usual
        status, _headers, _body = await _raw(
            url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status == 200


async def test_a_long_request_target_the_parser_lets_through_is_a_414_problem_from_the_gateway(
    make_gateway,
) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({})
    r = await client.get("/api/v1/portal/stats", params={"q": "a" * 9000})
    assert r.status_code == 414 and r.json()["code"] == "uri_too_long"
    r = await client.get("/", headers={"X-Filler": "b" * 40_000})
    assert r.status_code == 431 and r.json()["code"] == "headers_too_large"


def test_every_process_is_started_with_the_problem_answering_protocol() -> None:
    from common import processes, serving

    cmd = processes.uvicorn_command("gateway.main:create_app", 8000)
    assert cmd[cmd.index("--http") + 1] == serving.HTTP_PROTOCOL
    assert f"--http {serving.HTTP_PROTOCOL}" in (ROOT / "deploy" / "entrypoint.sh").read_text()
    assert "http=HTTP_PROTOCOL" in (ROOT / "gateway" / "gateway" / "launcher.py").read_text()
