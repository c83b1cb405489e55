"""What an outside security probe of identity found (issue 6, section 2), each as a test that
failed before its fix."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from pydantic import ValidationError

from common.auth import issue_service_token
from common.crypto import generate_key
from common.settings import DEV_SERVICE_TOKEN_SECRET
from common.testing.api_client import ApiDriver
from identity.config import Settings
from identity.tokens import private_pem


async def test_forty_parallel_wrong_passwords_lock_the_account_at_the_tenth(make_identity) -> None:  # type: ignore[no-untyped-def]
    """Finding 1: every failure is counted atomically, whatever arrives at once."""
    app: FastAPI = await make_identity(login_max_failures=10)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity", timeout=60) as c:
        api = ApiDriver(c)
        session = await api.register()
        ok = await c.put(
            "/api/v1/me/password", json={"new_password": "Gx2024-voucher"}, headers=session.headers
        )
        assert ok.status_code == 204
        captchas = [await api.captcha() for _ in range(40)]

        async def guess(captcha: tuple[str, str], n: int) -> httpx.Response:
            body = {
                "phone": session.phone,
                "password": f"wrong-password-{n}",
                "captcha_id": captcha[0],
                "captcha_answer": captcha[1],
            }
            return await c.post("/api/v1/auth/login", json=body)

        answers = await asyncio.gather(*(guess(cap, n) for n, cap in enumerate(captchas)))
        assert {r.status_code for r in answers} <= {401, 429}
        assert sum(r.status_code == 401 for r in answers) >= 10
        right = await api.password_login(session.phone, "Gx2024-voucher")
        assert right.status_code == 429 and right.json()["code"] == "login_locked"


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59", "1899-12-31"]
)
async def test_an_out_of_range_date_is_a_422_not_a_500(make_identity, since: str) -> None:  # type: ignore[no-untyped-def]
    """Finding 5: one date-time type (common.datetimes.Moment) refuses what cannot be stored
    (here on the audit feed the gateway reads for the staff's audit log)."""
    app: FastAPI = await make_identity()
    gateway = {"Authorization": f"Bearer {issue_service_token(DEV_SERVICE_TOKEN_SECRET, 'gateway')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        r = await c.get("/internal/audit-log", params={"since": since}, headers=gateway)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert "日期时间超出范围" in r.json()["detail"]
        fine = await c.get("/internal/audit-log", params={"since": "2024-09-13T00:00:00"}, headers=gateway)
        assert fine.status_code == 200


def production(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment": "production",
        "service_token_secret": secrets.token_urlsafe(32),
        "jwt_private_key": private_pem(Ed25519PrivateKey.generate()),
        "field_encryption_key": generate_key(),
        "hash_key": generate_key(),
    }
    values.update(overrides)
    return values


SAME_KEY = generate_key()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hash_key": base64.b64encode(b"x").decode()}, "IDENTITY_HASH_KEY is too short"),
        ({"hash_key": "not base64!"}, "IDENTITY_HASH_KEY must be base64"),
        ({"field_encryption_key": base64.b64encode(b"k" * 16).decode()}, "must be 32 random bytes"),
        ({"hash_key": SAME_KEY, "field_encryption_key": SAME_KEY}, "must differ"),
        ({"service_token_secret": "x"}, "SERVICE_TOKEN_SECRET is too short"),
        ({"service_token_secret": "s" * 31}, "SERVICE_TOKEN_SECRET is too short"),
    ],
)
def test_weak_or_reused_production_secrets_are_refused_at_start(
    overrides: dict[str, Any], message: str
) -> None:
    """Finding 6: what is too short or reused stops the service before it serves anyone."""
    with pytest.raises(ValidationError, match=message):
        Settings(**production(**overrides))


def test_strong_distinct_production_secrets_are_accepted() -> None:
    Settings(**production())


def test_a_development_only_setting_in_production_is_refused_not_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding 2: IDENTITY_SEED_DEMO=true with ENVIRONMENT unset (= production) stops identity."""
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.setenv("IDENTITY_SEED_DEMO", "true")
    with pytest.raises(ValidationError, match="IDENTITY_SEED_DEMO"):
        Settings(**{k: v for k, v in production().items() if k != "environment"})


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("x.html", "x.png"),  # the extension follows the bytes, not the client
        ("\u202egnp.exe", "gnp.png"),  # a right-to-left override that showed "exe.png"
        ("发\u2067票\u2069\u200b.png", "发票.png"),  # isolates and zero-width characters
        ("截图.PNG", "截图.PNG"),
    ],
)
async def test_an_uploaded_name_follows_its_bytes_and_downloads_as_an_attachment(
    make_identity, sent: str, stored: str
) -> None:  # type: ignore[no-untyped-def]
    """Finding 7: no misleading extension, no bidi or control characters, never inline."""
    app: FastAPI = await make_identity()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        session = await ApiDriver(c).register()
        r = await c.post("/api/v1/files", files={"file": (sent, PNG, "text/html")}, headers=session.headers)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == stored and r.json()["content_type"] == "image/png"
        got = await c.get(f"/api/v1/files/{r.json()['file_id']}", headers=session.headers)
        assert got.status_code == 200
        assert got.headers["content-disposition"].startswith("attachment;")
        assert got.headers["content-type"] == "image/png"


async def test_tokens_and_personal_data_are_never_stored_and_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, api: ApiDriver
) -> None:
    """Finding 8: no cache keeps a token or a person's data; browsers get the usual guards."""
    phone = "138" + str(secrets.randbelow(10**8)).zfill(8)
    code = await api.sms_code(phone, "register")
    registered = await client.post(
        "/api/v1/auth/register",
        json={"enterprise_name": "广西测试制造有限公司", "phone": phone, "sms_code": code},
    )
    token = registered.json()["access_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    refused = await client.get("/api/v1/me")
    health = await client.get("/healthz")
    for r in (registered, me, refused, health):
        assert r.headers["cache-control"] == "no-store", r.request.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "server" not in r.headers
    assert me.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_agreed_must_be_a_real_boolean(flows: Any) -> None:
    """Finding 8: "yes", "1" and 1 are not consent."""
    session = await flows.api.register()
    for value in ("yes", "1", 1, "true"):
        r = await flows.certify(session, agreed=value, sms_code="000000")
        assert r.status_code == 422, value
        assert r.json()["errors"][0]["field"] == "agreed", r.json()


async def test_production_keeps_metrics_and_docs_off_the_public_port(make_identity) -> None:  # type: ignore[no-untyped-def]
    """Finding 8: /metrics needs METRICS_TOKEN and /docs PUBLIC_DOCS=true in production;
    the gateway still reads identity's /openapi.json to merge it."""
    app: FastAPI = await make_identity(**production(metrics_token="m" * 40))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        assert (await c.get("/metrics")).status_code == 404
        assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 404
        opened = await c.get("/metrics", headers={"Authorization": "Bearer " + "m" * 40})
        assert opened.status_code == 200 and "voucher_http_requests_total" in opened.text
        assert (await c.get("/docs")).status_code == 404
        assert (await c.get("/openapi.json")).status_code == 200
    closed: FastAPI = await make_identity(**production())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=closed), base_url="http://identity") as c:
        assert (await c.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 404
    public: FastAPI = await make_identity(**production(public_docs=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=public), base_url="http://identity") as c:
        assert (await c.get("/docs")).status_code == 200


async def test_development_keeps_metrics_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
