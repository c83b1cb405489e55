"""The gateway in front of the real identity service (PostgreSQL + RabbitMQ)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common.testing.api_client import ApiDriver

pytestmark = pytest.mark.broker


def recording_upstream() -> tuple[Starlette, list[dict[str, str]]]:
    """A stand-in service that records what reached it."""
    seen: list[dict[str, str]] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append({"path": request.url.path, **{k: v for k, v in request.headers.items()}})
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE"])]), seen


async def test_requests_reach_identity_with_their_request_id(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app})
    r = await client.get("/api/v1/captcha", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-123"
    assert "captcha_id" in r.json()
    made = await client.get("/api/v1/captcha")
    assert len(made.headers["x-request-id"]) == 36  # the gateway made one


async def test_protected_paths_need_a_valid_token_before_forwarding(
    identity_app: FastAPI, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    upstream, seen = recording_upstream()
    _app, client = await make_gateway({"identity": identity_app, "quota": upstream})
    # The identity route table sends /me to identity; quota is only a recorder here.
    r = await client.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    api = ApiDriver(client)
    session = await api.register()
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(session.access_token)
    unsigned = jwt.encode(
        {**claims, "role": "administrator"}, None, algorithm="none", headers={"kid": header["kid"]}
    )
    r = await client.get("/api/v1/admin/staff", headers={"Authorization": f"Bearer {unsigned}"})
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"
    ok = await client.get("/api/v1/me", headers=session.headers)
    assert ok.status_code == 200 and ok.json()["user"]["phone"] == session.phone
    assert seen == []


async def test_internal_endpoints_are_never_routed(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app})
    for path in (
        "/internal/stats",
        "/api/v1/internal/stats",
        "/api/v1/../internal/stats",
        # dot segments the client did not resolve: the gateway must not route them onwards
        "/api/v1/captcha/%2e%2e/%2e%2e/%2e%2e/internal/stats",
        "/api/v1/me/%2E%2E/%2e%2e/%2e%2e/internal/audit-log",
    ):
        r = await client.get(path)
        assert r.status_code == 404, path


async def test_dev_helpers_do_not_exist_in_production(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    import os

    os.environ["SERVICE_TOKEN_SECRET"] = "test-production-secret-0123456789abcdef"
    try:
        _app, client = await make_gateway({"identity": identity_app}, environment="production")
    finally:
        del os.environ["SERVICE_TOKEN_SECRET"]
    r = await client.get("/api/v1/dev/sms-codes/latest", params={"phone": "13800000000"})
    assert r.status_code == 404


async def test_rate_limit_per_address(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_ip=5)
    statuses = [(await client.get("/api/v1/captcha")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    r = await client.get("/api/v1/captcha")
    assert r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1


async def test_rate_limit_is_shared_by_replicas(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _a, first = await make_gateway({"identity": identity_app}, rate_limit_per_ip=6)
    b_app, second = await make_gateway({"identity": identity_app}, rate_limit_per_ip=6)
    for _ in range(4):
        assert (await first.get("/api/v1/captcha")).status_code == 200
    await asyncio.sleep(0.3)  # a few sync intervals
    await b_app.state.limiter.sync()
    statuses = [(await second.get("/api/v1/captcha")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_rate_limit_per_user(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_user=3)
    session = await ApiDriver(client).register()
    statuses = [(await client.get("/api/v1/me", headers=session.headers)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_the_gateways_own_routes_count_against_the_same_limits(
    identity_app: FastAPI, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    """/portal/stats (public, and it asks every service) and the composed audit log are
    answered by the gateway itself: they are limited per address and per user like any
    forwarded route, or they are a free way to load every service."""
    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_ip=4)
    statuses = [(await client.get("/api/v1/portal/stats")).status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    r = await client.get("/api/v1/admin/audit-log")
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1

    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_user=3)
    session = await ApiDriver(client).register()
    statuses = [
        (await client.get("/api/v1/admin/audit-log", headers=session.headers)).status_code for _ in range(4)
    ]
    assert statuses == [403, 403, 403, 429]


async def test_an_upstream_that_is_down_is_a_502_problem(make_gateway, fresh_db) -> None:  # type: ignore[no-untyped-def]
    from common.auth import KeySet
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    settings = gateway_settings(await fresh_db("gateway"), identity_url="http://127.0.0.1:9")
    ups = Upstreams.over_http(settings.upstreams(), timeout=2, connect_timeout=1, max_connections=5)
    app = create_app(settings, upstreams=ups, key_set=KeySet())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
            r = await c.get("/api/v1/captcha")
    assert r.status_code == 502
    assert r.json()["code"] == "upstream_unavailable"
    assert r.headers["content-type"] == "application/problem+json"


async def test_huge_bodies_are_refused_at_the_gateway(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app})
    r = await client.post(
        "/api/v1/auth/register", content=b"x" * 3_000_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_anyone_reaches_contracts_ca_certificate_and_verify_with_a_pdf_up_to_eleven_mb(
    make_gateway,
) -> None:  # type: ignore[no-untyped-def]
    upstream, seen = recording_upstream()
    _app, client = await make_gateway({"contracts": upstream})
    assert (await client.get("/api/v1/contracts/ca-certificate")).status_code == 200
    pdf = b"%PDF-1.7\n" + b"0" * 5_000_000  # over the API's 1 MB, under verify's limit
    r = await client.post("/api/v1/contracts/verify", files={"file": ("c.pdf", pdf, "application/pdf")})
    assert r.status_code == 200, r.text
    assert [s["path"] for s in seen] == ["/api/v1/contracts/ca-certificate", "/api/v1/contracts/verify"]
    r = await client.post("/api/v1/contracts/verify", content=b"x" * 12_000_000)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    for method, path in (("GET", "/api/v1/contracts/c1"), ("POST", "/api/v1/contracts/c1/sign")):
        r = await client.request(method, path)
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated", path
    assert len(seen) == 2


async def test_merged_openapi_lists_the_public_api_only(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app})
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in ("/api/v1/captcha", "/api/v1/auth/register", "/api/v1/me", "/api/v1/portal/stats"):
        assert path in paths, path
    assert not any(p.startswith("/internal") for p in paths)
    assert (await client.get("/docs")).status_code == 200


async def test_portal_stats_fill_what_they_can_and_mark_the_rest_stale(
    identity_app: FastAPI, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app}, stats_cache_seconds=0)
    body = (await client.get("/api/v1/portal/stats")).json()
    assert body["enterprises"] == 0 and body["providers"] == 0
    assert set(body["stale"]) == {"quota", "catalog", "contracts", "payments", "demands"}
    assert body["published_demands"] is None
    assert body["products"] is None
    for key in (
        "signed_contracts",
        "deducted_fen",
        "settled_fen",
        "enterprises_with_quota",
        "quota_total_fen",
        "pending_budget_fen",
    ):
        assert key in body


async def test_audit_log_is_for_staff(identity_app: FastAPI, make_gateway) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app})
    assert (await client.get("/api/v1/admin/audit-log")).status_code == 401
    session = await ApiDriver(client).register()
    r = await client.get("/api/v1/admin/audit-log", headers=session.headers)
    assert r.status_code == 403


async def test_the_face_return_and_the_contract_verification_have_tighter_limits_of_their_own(
    make_gateway,  # type: ignore[no-untyped-def]
) -> None:
    """Public, and each call costs a vendor request or a PDF validation: limited per address
    well below the general limit, answered with the house 429; other routes are not held."""
    identity, seen_identity = recording_upstream()
    contracts, seen_contracts = recording_upstream()
    _app, client = await make_gateway(
        {"identity": identity, "contracts": contracts},
        rate_limit_per_ip=100,
        rate_limit_face_return_per_ip=3,
        rate_limit_contract_verify_per_ip=2,
    )
    returns = [
        (await client.get(f"/api/v1/identity-verifications/v-{n}/return")).status_code for n in range(4)
    ]
    assert returns == [200, 200, 200, 429]
    r = await client.get("/api/v1/identity-verifications/v-9/return", params={"certifyId": "x"})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["Retry-After"]) >= 1
    assert len(seen_identity) == 3  # the refused ones never reached identity

    verifies = [
        (await client.post("/api/v1/contracts/verify", content=b"%PDF")).status_code for _ in range(3)
    ]
    assert verifies == [200, 200, 429]
    assert len(seen_contracts) == 2
    # The CA certificate (public too, cheap) and the rest still answer: the general limit is far.
    assert (await client.get("/api/v1/contracts/ca-certificate")).status_code == 200
    assert (await client.get("/api/v1/captcha")).status_code == 200

    # Per address: another caller is not held by this one's count.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app, client=("192.0.2.77", 4000)), base_url="http://gateway"
    )
    async with other:
        assert (await other.get("/api/v1/identity-verifications/v-1/return")).status_code == 200
        assert (await other.post("/api/v1/contracts/verify", content=b"%PDF")).status_code == 200


async def test_the_gateway_s_pool_takes_its_size_from_the_settings(fresh_db) -> None:  # type: ignore[no-untyped-def]
    """Issue 17, section 8: DB_POOL_SIZE / DB_MAX_OVERFLOW size the gateway's pool too (the
    rate limiter's), 5 and 5 unless set."""
    from common.auth import KeySet
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    url = await fresh_db("gateway")
    default = create_app(gateway_settings(url), upstreams=Upstreams.in_process({}), key_set=KeySet())
    sized = create_app(
        gateway_settings(url, db_pool_size=2, db_max_overflow=1),
        upstreams=Upstreams.in_process({}),
        key_set=KeySet(),
    )
    for app, expected in ((default, (5, 5)), (sized, (2, 1))):
        pool = app.state.db.engine.pool
        assert (pool.size(), pool._max_overflow) == expected
        await app.state.db.dispose()
    assert gateway_settings(url).db_max_connections == 5 + 5 + 2 + 2


async def test_a_designation_import_of_5_mib_passes_the_gateway_and_5_mib_elsewhere_is_refused(
    fresh_db,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 17, section 9: quota accepts designation files of up to 50 MiB, the registry
    says so, and the gateway lets such a body through on that route only."""
    from common.testing.tokens import TestIssuer
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    upstream, seen = recording_upstream()
    issuer = TestIssuer()
    staff = issuer.staff("administrator")
    app = create_app(
        gateway_settings(await fresh_db("gateway")),
        upstreams=Upstreams.in_process({"quota": upstream}),
        key_set=issuer.keys,
    )
    body = b"91450100MA5KXXXX0X,large\n" * (5 * 1024 * 1024 // 26 + 1)  # a little over 5 MiB
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
            r = await c.post(
                "/api/v1/admin/designations/import",
                files={"file": ("designations.csv", body, "text/csv")},
                headers=staff.headers,
            )
            assert r.status_code == 200, r.text
            assert [s["path"] for s in seen] == ["/api/v1/admin/designations/import"]
            for path in ("/api/v1/admin/designations", "/api/v1/admin/quota-applications"):
                r = await c.post(
                    path, files={"file": ("designations.csv", body, "text/csv")}, headers=staff.headers
                )
                assert r.status_code == 413 and r.json()["code"] == "payload_too_large", path

            # Chunked (no Content-Length): counted as it comes, refused all the same.
            async def chunked() -> AsyncIterator[bytes]:
                for start in range(0, len(body), 256 * 1024):
                    yield body[start : start + 256 * 1024]

            r = await c.post("/api/v1/admin/quota-applications", content=chunked(), headers=staff.headers)
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert len(seen) == 1


def test_the_registry_s_body_limits_cover_what_each_service_accepts() -> None:
    """The gateway's limits per route come from the registry; each one at least what the
    service itself accepts on that route by default (or its uploads would stop at the gateway)."""
    from common import registry
    from contracts.config import Settings as ContractsSettings
    from identity.config import Settings as IdentitySettings
    from quota.config import Settings as QuotaSettings

    def declared(path: str) -> int | None:
        return registry.body_limit(path)

    assert declared("/admin/designations/import") == QuotaSettings.model_fields["import_max_bytes"].default
    files = IdentitySettings.model_fields["max_upload_bytes"].default
    verify = ContractsSettings.model_fields["verify_max_bytes"].default
    assert declared("/files") is not None and declared("/files") > files  # type: ignore[operator]
    assert declared("/contracts/verify") is not None and declared("/contracts/verify") > verify  # type: ignore[operator]
    assert declared("/admin/designations") is None  # the API's own limit (MAX_BODY_BYTES)
    assert declared("/files/f1") == declared("/files")
