"""A production start on the real vendors' settings, end to end: every service its own process
with ``ENVIRONMENT=production`` (its secrets generated here), identity's SMS (Tencent Cloud
SMS), face verification (Tencent Cloud FaceID) and enterprise verification (企查查 企业三要素核验)
pointed at a fake of their HTTP APIs on 127.0.0.1. No development endpoint exists in
production: the captcha is read from identity's database (as a person reads the picture), the
SMS codes from the requests the fake SMS vendor received, and the face checks pass at the fake
FaceID for the person identity sent (as the person in front of the camera would).

register → sign in by SMS → certify (企查查 asked) → provider and enterprise make their seals
(FaceID) → an order with the voucher → its contract signed by both (FaceID)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.testing.api_client import ApiDriver, Session
from common.testing.plugin import require_broker
from contracts.signing import SigningCA

from .conftest import ADMIN_PASSWORD, ADMIN_PHONE, Platform
from .journey import Journey, expect, platform_for_module

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(600)]

TEMPLATES = {"register": "2000001", "login": "2000002", "certify": "2000003", "reset_password": "2000004"}
QCC_KEY = "qcc-e2e-app-key"
QCC_SECRET = secrets.token_hex(16)


@dataclass
class Vendors:
    """One loopback server standing for the three vendors: Tencent Cloud's API (SMS and FaceID,
    told apart by ``X-TC-Action``) and 企查查's (by path)."""

    port: int = 0
    sms: list[dict[str, Any]] = field(default_factory=list)  # the SendSms requests
    detect: dict[str, dict[str, Any]] = field(default_factory=dict)  # BizToken -> DetectAuth request
    results_asked: list[str] = field(default_factory=list)  # BizTokens of GetDetectInfoEnhanced
    qcc: list[dict[str, str]] = field(default_factory=list)  # ECIThreeElVerify queries
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Any:
        with self.lock:
            if path == "/ECIThreeElVerify/GetInfo":
                return self._qcc(query, headers)
            action = headers.get("x-tc-action")
            request = json.loads(body)
            if action == "SendSms":
                self.sms.append(request)
                return {
                    "Response": {
                        "SendStatusSet": [{"Code": "Ok", "Message": "send success"}],
                        "RequestId": "s",
                    }
                }
            if action == "DetectAuth":
                token = f"bt-{len(self.detect) + 1}"
                self.detect[token] = request
                url = f"https://h5.faceid.qq.com/api/web/login?token={token}"
                return {"Response": {"Url": url, "BizToken": token, "RequestId": "d"}}
            if action == "GetDetectInfoEnhanced":
                token = request["BizToken"]
                self.results_asked.append(token)
                started = self.detect[token]
                text = {
                    "ErrCode": 0,
                    "ErrMsg": "成功",
                    "Name": started["Name"],
                    "IdCard": started["IdCard"],
                    "Extra": started["Extra"],
                }
                return {"Response": {"Text": text, "RequestId": "g"}}
            return {
                "Response": {"Error": {"Code": "InvalidAction", "Message": str(action)}, "RequestId": "x"}
            }

    def _qcc(self, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        self.qcc.append({**query, "token": headers.get("token", ""), "timespan": headers.get("timespan", "")})
        expected = hashlib.md5(f"{query.get('key')}{headers.get('timespan')}{QCC_SECRET}".encode())
        if query.get("key") != QCC_KEY or headers.get("token") != expected.hexdigest().upper():
            return {"Status": "115", "Message": "【无效请求】身份验证错误或者已过期", "Result": None}
        return {"Status": "200", "Message": "【有效请求】查询成功", "Result": {"VerifyResult": 1}}

    def code(self, phone: str, purpose: str) -> str:
        """The code in the last SMS of that purpose's template sent to ``phone``."""
        with self.lock:
            sent = [
                r
                for r in self.sms
                if r["PhoneNumberSet"] == [f"+86{phone}"] and r["TemplateId"] == TEMPLATES[purpose]
            ]
        assert sent, f"no {purpose} SMS to {phone}"
        [code] = sent[-1]["TemplateParamSet"]
        return str(code)


@contextmanager
def serve_vendors() -> Iterator[Vendors]:
    vendors = Vendors()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            payload = json.dumps(
                vendors.answer(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"{}",
                )
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    vendors.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield vendors
    finally:
        server.shutdown()
        server.server_close()


def production_env(vendors: Vendors) -> dict[str, str]:
    """ENVIRONMENT=production with secrets made for this run, and the three vendors chosen."""
    ca = SigningCA.generate(years=1)
    jwt_key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "ENVIRONMENT": "production",
        "SERVICE_TOKEN_SECRET": secrets.token_urlsafe(48),
        "IDENTITY_JWT_PRIVATE_KEY": jwt_key.decode(),
        "IDENTITY_FIELD_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "IDENTITY_HASH_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CONTRACTS_SIGNING_CA_KEY_PEM": ca.key_pem,
        "CONTRACTS_SIGNING_CA_CERT_PEM": ca.cert_pem,
        "LOG_JSON": "true",
        # Tencent Cloud: SMS and FaceID on one CAM key.
        "IDENTITY_TENCENT_SECRET_ID": "AKID-e2e-secret-id",
        "IDENTITY_TENCENT_SECRET_KEY": secrets.token_hex(16),
        "IDENTITY_SMS_PROVIDER": "tencent",
        "IDENTITY_SMS_SIGN_NAME": "广西制造服务券",
        "IDENTITY_TENCENT_SMS_SDK_APP_ID": "1400000001",
        **{f"IDENTITY_SMS_TEMPLATE_{p.upper()}": t for p, t in TEMPLATES.items()},
        "IDENTITY_SMS_ENDPOINT": vendors.endpoint,
        "IDENTITY_FACE_VERIFIER": "tencent",
        "IDENTITY_TENCENT_FACEID_RULE_ID": "1",
        "IDENTITY_FACEID_ENDPOINT": vendors.endpoint,
        # 企查查 企业三要素核验.
        "IDENTITY_ENTERPRISE_VERIFIER": "qcc",
        "IDENTITY_QCC_APP_KEY": QCC_KEY,
        "IDENTITY_QCC_SECRET_KEY": QCC_SECRET,
        "IDENTITY_QCC_ENDPOINT": vendors.endpoint,
        "IDENTITY_VENDOR_RETRY_WAIT_SECONDS": "0",
    }


class ProductionDriver(ApiDriver):
    """The API driver without the development endpoints. ``db`` is one connection to
    identity's database, kept for the journey (the shared PostgreSQL of a busy machine may be
    at its connection limit at any moment: one connection made once, not one per captcha)."""

    def __init__(self, client: httpx.AsyncClient, db: asyncpg.Connection, vendors: Vendors) -> None:
        super().__init__(client)
        self.db = db
        self.vendors = vendors

    async def captcha(self) -> tuple[str, str]:
        r = await self.client.get(self.url("/captcha"))
        r.raise_for_status()
        captcha_id = str(r.json()["captcha_id"])
        answer = await self.db.fetchval("SELECT answer FROM captchas WHERE id = $1", captcha_id)
        return captcha_id, str(answer)

    async def sms_code(self, phone: str, purpose: str) -> str:
        r = await self.request_sms(phone, purpose)
        assert r.status_code == 202, r.text
        return self.vendors.code(phone, purpose)

    async def register(
        self, phone: str | None = None, enterprise_name: str = "广西测试制造有限公司"
    ) -> Session:
        """注册, then 短信登录 with a fresh code: the session of the sign-in."""
        registered = await super().register(phone, enterprise_name)
        signed_in = await self.sms_login(registered.phone)
        assert signed_in.body["organization"]["id"] == registered.body["organization"]["id"]
        return signed_in


class ProductionJourney(Journey):
    async def verification(self, who: Any, purpose: str, object_id: str | None = None) -> str:
        """人脸认证 at FaceID: started (DetectAuth), done on the phone, then checked (identity asks
        GetDetectInfoEnhanced) and its token read back."""
        body: dict[str, Any] = {"purpose": purpose}
        if object_id:
            body["object_id"] = object_id
        started = expect(await self.post("/me/identity-verifications", who, body), 201)
        assert started["url"].startswith("https://h5.faceid.qq.com/"), started
        vid = started["verification_id"]
        checked = expect(await self.post(f"/me/identity-verifications/{vid}/check", who))
        assert checked["state"] == "passed", checked
        got = expect(await self.get(f"/me/identity-verifications/{vid}", who))
        assert got["state"] == "passed" and got.get("token"), got
        return str(got["token"])


@pytest_asyncio.fixture
async def vendors() -> AsyncIterator[Vendors]:
    with serve_vendors() as started:
        yield started


@pytest_asyncio.fixture
async def identity_db(production_platform: Platform) -> AsyncIterator[asyncpg.Connection]:
    url = production_platform.processes.env["IDENTITY_DATABASE_URL"]
    url = url.replace("postgresql+asyncpg://", "postgresql://")
    for attempt in range(20):  # other processes may hold every connection for a moment
        try:
            conn = await asyncpg.connect(url)
            break
        except asyncpg.TooManyConnectionsError:
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)
    try:
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def production_platform(
    vendors: Vendors,
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> AsyncIterator[Platform]:
    url = require_broker(amqp_url_or_none, request)
    async with platform_for_module(postgres_server, url, tmp_path, production_env(vendors)) as p:
        yield p


async def test_a_production_start_registers_certifies_seals_and_signs_through_the_vendors(
    production_platform: Platform, vendors: Vendors, identity_db: asyncpg.Connection
) -> None:
    began = time.monotonic()
    platform = production_platform
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        assert (
            await client.get("/api/v1/dev/sms-codes/latest", params={"phone": "13800000000"})
        ).status_code == 404
        # Journey.start's steps, on the driver without development endpoints.
        j = ProductionJourney(platform, client)
        j.api = ProductionDriver(client, identity_db, vendors)
        j.admin = await j.api.login(ADMIN_PHONE, ADMIN_PASSWORD)
        j.reviewer = await j.staff("reviewer", "审核员甲")
        j.finance = await j.staff("finance", "财务员乙")
        await j.campaign()

        enterprise, provider, order, signed = await j.signed_order()

    assert signed["state"] == "signed" and order["status"] == "awaiting_acceptance"
    # 企查查 was asked for both organisations, signed with the key and secret.
    asked = {q["creditCode"]: q for q in vendors.qcc}
    for org in (enterprise, provider):
        q = asked[org.uscc]
        assert (q["companyName"], q["operName"], q["key"]) == (org.name, "王五", QCC_KEY)
        assert q["token"] == hashlib.md5(f"{QCC_KEY}{q['timespan']}{QCC_SECRET}".encode()).hexdigest().upper()
    # Two seals and two signatures, each a FaceID check of the legal representative.
    assert len(vendors.detect) == 4 and sorted(vendors.results_asked) == sorted(vendors.detect)
    assert {d["Name"] for d in vendors.detect.values()} == {"王五"}
    # Every code went through the SMS vendor: register, login and certify for each organisation.
    purposes = sorted(r["TemplateId"] for r in vendors.sms)
    assert purposes == sorted([TEMPLATES["register"], TEMPLATES["login"], TEMPLATES["certify"]] * 2)
    logs = platform.processes.log_text()
    for secret in (QCC_SECRET, platform.processes.env["IDENTITY_TENCENT_SECRET_KEY"]):
        assert secret not in logs
    print(f"[e2e] production journey after start: {time.monotonic() - began:.1f}s")
