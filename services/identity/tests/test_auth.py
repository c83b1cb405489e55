"""Registration, sign-in and sessions through identity's API (real PostgreSQL + RabbitMQ)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from typing import Any

import httpx
import jwt
import pytest

from common.testing.api_client import ApiDriver, random_phone

pytestmark = pytest.mark.broker


async def test_captcha_is_a_png_and_single_use(api: ApiDriver, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/captcha")
    assert r.status_code == 200
    body = r.json()
    assert base64.b64decode(body["image_png_base64"]).startswith(b"\x89PNG")
    assert body["expires_in"] == 300
    answer = (await client.get(f"/api/v1/dev/captcha/{body['captcha_id']}")).json()["answer"]
    payload = {
        "phone": random_phone(),
        "purpose": "register",
        "captcha_id": body["captcha_id"],
        "captcha_answer": answer,
    }
    assert (await client.post("/api/v1/sms-codes", json=payload)).status_code == 202
    # The same captcha a second time is refused: it was spent.
    payload["phone"] = random_phone()
    again = await client.post("/api/v1/sms-codes", json=payload)
    assert again.status_code == 400
    assert again.json()["code"] == "captcha_invalid"
    assert again.headers["content-type"] == "application/problem+json"


async def test_wrong_captcha_is_refused_and_spent(client: httpx.AsyncClient, api: ApiDriver) -> None:
    captcha_id, answer = await api.captcha()
    wrong = "0000" if answer != "0000" else "1111"
    phone = random_phone()
    body = {"phone": phone, "purpose": "register", "captcha_id": captcha_id, "captcha_answer": wrong}
    r = await client.post("/api/v1/sms-codes", json=body)
    assert r.status_code == 400 and r.json()["code"] == "captcha_invalid"
    # Even the right answer no longer works for that captcha.
    body["captcha_answer"] = answer
    assert (await client.post("/api/v1/sms-codes", json=body)).json()["code"] == "captcha_invalid"
    # And no code was sent to the phone.
    assert (await client.get("/api/v1/dev/sms-codes/latest", params={"phone": phone})).status_code == 404


async def test_register_signs_in_and_me_shows_the_new_account(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    phone = random_phone()
    session = await api.register(phone, "广西南宁某某机械有限公司")
    assert session.body["user"]["name"] == f"用户{phone[-4:]}"
    assert session.body["user"]["role"] == "owner"
    assert session.body["expires_in"] == 900
    me = await client.get("/api/v1/me", headers=session.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["phone"] == phone
    assert body["organization"]["name"] == "广西南宁某某机械有限公司"
    assert body["organization"]["certified"] is False
    assert body["organization"]["capabilities"] == []
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    assert (
        claims["typ"] == "access" and claims["role"] == "owner" and claims["exp"] - int(claims["iat"]) == 900
    )
    assert (claims["phone"], claims["name"]) == (phone, f"用户{phone[-4:]}")  # the account, until certified


async def test_register_twice_with_one_phone_is_refused_only_once_the_code_is_right(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    phone = random_phone()
    await api.register(phone)
    code = await api.sms_code(phone, "register")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {"enterprise_name": "某公司", "phone": phone, "sms_code": wrong}
    r = await client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"
    r = await client.post("/api/v1/auth/register", json={**body, "sms_code": code})
    assert r.status_code == 409 and r.json()["code"] == "phone_registered"


@pytest.mark.parametrize(
    ("purpose", "registered"),
    [("register", True), ("login", False), ("reset_password", False), ("certify", False)],
)
async def test_a_code_request_does_not_tell_whether_a_phone_is_registered(
    api: ApiDriver, client: httpx.AsyncClient, purpose: str, registered: bool
) -> None:
    """The answer for the phone that would be refused is the answer for any phone: same
    status, same body, a code sent all the same (the same work, so the same time). Only the
    phone's owner, with that code, learns more."""
    taken = (await api.register()).phone
    free = random_phone()
    telling, ordinary = (taken, free) if registered else (free, taken)
    answers = [await api.request_sms(phone, purpose) for phone in (telling, ordinary)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
    latest = await client.get("/api/v1/dev/sms-codes/latest", params={"phone": telling})
    assert latest.status_code == 200 and latest.json()["purpose"] == purpose


async def test_sms_login_and_reset_for_an_unregistered_phone_say_so_only_after_the_right_code(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    phone = random_phone()
    code = await api.sms_code(phone, "login")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    captcha_id, answer = await api.captcha()
    login = {"phone": phone, "sms_code": wrong, "captcha_id": captcha_id, "captcha_answer": answer}
    r = await client.post("/api/v1/auth/login/sms", json=login)
    assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"
    captcha_id, answer = await api.captcha()
    login.update(sms_code=code, captcha_id=captcha_id, captcha_answer=answer)
    r = await client.post("/api/v1/auth/login/sms", json=login)
    assert r.status_code == 404 and r.json()["code"] == "phone_not_registered"

    code = await api.sms_code(phone, "reset_password")
    reset = {"phone": phone, "sms_code": code, "new_password": "Qx7!vB2#mTq9"}
    r = await client.post("/api/v1/auth/password/reset", json=reset)
    assert r.status_code == 404 and r.json()["code"] == "phone_not_registered"


async def test_sms_code_resend_interval_and_daily_caps(make_identity, rabbit) -> None:  # type: ignore[no-untyped-def]
    app = await make_identity(sms_resend_seconds=60, sms_daily_cap_per_phone=10, sms_daily_cap_per_ip=3)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        api = ApiDriver(c)
        phone = random_phone()
        first = await api.request_sms(phone, "register", **{"X-Forwarded-For": "203.0.113.7"})
        assert first.status_code == 202
        second = await api.request_sms(phone, "register", **{"X-Forwarded-For": "203.0.113.7"})
        assert second.status_code == 429
        assert second.json()["code"] == "sms_too_frequent"
        assert 0 < int(second.headers["Retry-After"]) <= 60
        # The per-address daily cap counts every phone sent from one address.
        for _ in range(2):
            assert (
                await api.request_sms(random_phone(), "register", **{"X-Forwarded-For": "203.0.113.7"})
            ).status_code == 202
        capped = await api.request_sms(random_phone(), "register", **{"X-Forwarded-For": "203.0.113.7"})
        assert capped.status_code == 429 and capped.json()["code"] == "sms_daily_limit"
        # Another address is not affected.
        assert (
            await api.request_sms(random_phone(), "register", **{"X-Forwarded-For": "198.51.100.9"})
        ).status_code == 202


async def test_sms_code_brute_force_locks_the_code(api: ApiDriver, client: httpx.AsyncClient) -> None:
    phone = random_phone()
    code = await api.sms_code(phone, "register")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    codes = []
    for _ in range(5):
        r = await client.post(
            "/api/v1/auth/register", json={"enterprise_name": "某公司", "phone": phone, "sms_code": wrong}
        )
        codes.append(r.json()["code"])
    assert codes[:4] == ["sms_code_invalid"] * 4
    assert codes[4] == "sms_code_locked"
    # The right code no longer works: it is dead after five wrong tries.
    r = await client.post(
        "/api/v1/auth/register", json={"enterprise_name": "某公司", "phone": phone, "sms_code": code}
    )
    assert r.status_code in (400, 429)
    # Nothing was registered.
    code = await api.sms_code(phone, "login")
    captcha_id, answer = await api.captcha()
    login = {"phone": phone, "sms_code": code, "captcha_id": captcha_id, "captcha_answer": answer}
    r = await client.post("/api/v1/auth/login/sms", json=login)
    assert r.status_code == 404 and r.json()["code"] == "phone_not_registered"


async def test_a_used_sms_code_cannot_be_replayed(api: ApiDriver, client: httpx.AsyncClient) -> None:
    phone = random_phone()
    code = await api.sms_code(phone, "register")
    body = {"enterprise_name": "某公司", "phone": phone, "sms_code": code}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    replay = await client.post("/api/v1/auth/register", json=body)
    assert replay.status_code == 400 and replay.json()["code"] == "sms_code_invalid"
    login_code = await api.sms_code(phone, "login")
    captcha_id, answer = await api.captcha()
    login = {"phone": phone, "sms_code": login_code, "captcha_id": captcha_id, "captcha_answer": answer}
    assert (await client.post("/api/v1/auth/login/sms", json=login)).status_code == 200
    captcha_id, answer = await api.captcha()
    login.update(captcha_id=captcha_id, captcha_answer=answer)
    again = await client.post("/api/v1/auth/login/sms", json=login)
    assert again.status_code == 400 and again.json()["code"] == "sms_code_invalid"


async def test_a_code_for_one_purpose_does_not_work_for_another(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    session = await api.register()
    reset_code = await api.sms_code(session.phone, "reset_password")
    captcha_id, answer = await api.captcha()
    r = await client.post(
        "/api/v1/auth/login/sms",
        json={
            "phone": session.phone,
            "sms_code": reset_code,
            "captcha_id": captcha_id,
            "captcha_answer": answer,
        },
    )
    assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"


async def test_password_set_login_and_lockout(make_identity) -> None:  # type: ignore[no-untyped-def]
    app = await make_identity(login_max_failures=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        api = ApiDriver(c)
        session = await api.register()
        weak = await c.put("/api/v1/me/password", json={"new_password": "12345678"}, headers=session.headers)
        assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
        assert "至少两种" in weak.json()["detail"]
        for guessable in ("Password1", "Abc12345", f"Gx{session.phone}"):
            refused = await c.put(
                "/api/v1/me/password", json={"new_password": guessable}, headers=session.headers
            )
            assert refused.status_code == 422 and refused.json()["code"] == "weak_password", guessable
            assert refused.json()["errors"][0]["field"] == "new_password"
        ok = await c.put(
            "/api/v1/me/password", json={"new_password": "Gx2024-voucher"}, headers=session.headers
        )
        assert ok.status_code == 204
        # Changing it again needs the old one.
        no_old = await c.put(
            "/api/v1/me/password", json={"new_password": "Other-2024x"}, headers=session.headers
        )
        assert no_old.status_code == 400 and no_old.json()["code"] == "old_password_incorrect"
        logged_in = await api.login(session.phone, "Gx2024-voucher")
        assert logged_in.body["user"]["phone"] == session.phone
        for _ in range(3):
            bad = await api.password_login(session.phone, "wrong-password-1")
            assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"
            assert bad.json()["detail"] == "手机号或密码错误"
        locked = await api.password_login(session.phone, "Gx2024-voucher")
        assert locked.status_code == 429 and locked.json()["code"] == "login_locked"


async def test_unknown_phone_and_wrong_password_look_the_same(api: ApiDriver) -> None:
    unknown = await api.password_login(random_phone(), "whatever-123")
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_revokes_the_family(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    first = await api.register()
    second = await api.refresh(first)
    assert second.refresh_token != first.refresh_token
    third = await api.refresh(second)
    # Presenting the spent first token again: reuse. The whole family ends, third included.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": first.refresh_token})
    assert reuse.status_code == 401 and reuse.json()["code"] == "refresh_token_reused"
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": third.refresh_token})
    assert after.status_code == 401
    # Another sign-in of the same person is a different family and still works.
    other = await api.sms_login(first.phone)
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})
    ).status_code == 200


@pytest.mark.parametrize(
    "token", ["garbage", "x" * 36 + ".abc", "00000000-0000-0000-0000-000000000000.secret"]
)
async def test_forged_refresh_tokens_are_refused(client: httpx.AsyncClient, token: str) -> None:
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401 and r.json()["code"] == "refresh_token_invalid"


async def test_logout_ends_the_session(api: ApiDriver, client: httpx.AsyncClient) -> None:
    session = await api.register()
    r = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": session.refresh_token}, headers=session.headers
    )
    assert r.status_code == 204
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert after.status_code == 401


async def test_someone_elses_refresh_token_cannot_be_logged_out(
    api: ApiDriver, client: httpx.AsyncClient
) -> None:
    alice = await api.register()
    bob = await api.register()
    r = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": alice.refresh_token}, headers=bob.headers
    )
    assert r.status_code == 401
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    ).status_code == 200


async def test_password_reset_ends_every_session(api: ApiDriver, client: httpx.AsyncClient) -> None:
    session = await api.register()
    code = await api.sms_code(session.phone, "reset_password")
    r = await client.post(
        "/api/v1/auth/password/reset",
        json={"phone": session.phone, "sms_code": code, "new_password": "Reset-2024-ok"},
    )
    assert r.status_code == 204
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    ).status_code == 401
    assert (await api.login(session.phone, "Reset-2024-ok")).body["user"]["phone"] == session.phone


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        ("Bearer not-a-jwt", "token_invalid"),
        ("Basic dXNlcjpwYXNz", "unauthenticated"),
    ],
)
async def test_me_requires_a_valid_token(client: httpx.AsyncClient, header: str | None, code: str) -> None:
    r = await client.get("/api/v1/me", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and r.json()["code"] == code


async def test_alg_none_and_foreign_keys_are_refused(api: ApiDriver, client: httpx.AsyncClient) -> None:
    session = await api.register()
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(session.access_token)
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": header["kid"]})
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {unsigned}"})
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = jwt.encode(
        {**claims, "role": "administrator"},
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": header["kid"]},
    )
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"
    hs = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": header["kid"]})
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {hs}"})).status_code == 401


async def test_expired_access_token_is_refused(make_identity) -> None:  # type: ignore[no-untyped-def]
    app = await make_identity(access_ttl_seconds=-10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        session = await ApiDriver(c).register()
        r = await c.get("/api/v1/me", headers=session.headers)
        assert r.status_code == 401 and r.json()["code"] == "token_expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "1234", "purpose": "register", "captcha_id": "x", "captcha_answer": "1"}, "phone"),
        ({"phone": "13812346433", "purpose": "steal", "captcha_id": "x", "captcha_answer": "1"}, "purpose"),
        ({"phone": 13812346433, "purpose": "register", "captcha_id": "x", "captcha_answer": "1"}, "phone"),
        ({"purpose": "register", "captcha_id": "x", "captcha_answer": "1"}, "phone"),
    ],
)
async def test_bad_input_is_a_chinese_422(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    r = await client.post("/api/v1/sms-codes", json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert any(e["field"] == field for e in problem["errors"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["detail"])


async def test_malformed_json_and_huge_bodies(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"
    huge = b'{"enterprise_name": "' + b"a" * 2_000_000 + b'"}'
    r = await client.post("/api/v1/auth/register", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_jwks_publishes_the_signing_key(api: ApiDriver, client: httpx.AsyncClient) -> None:
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    session = await api.register()
    kid = jwt.get_unverified_header(session.access_token)["kid"]
    key = next(k for k in keys if k["kid"] == kid)
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "d" not in key
    claims = jwt.decode(
        session.access_token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="voucher-platform"
    )
    assert claims["sub"] == session.body["user"]["id"]


async def test_expired_captchas_and_sms_codes_are_refused(make_identity) -> None:  # type: ignore[no-untyped-def]
    app = await make_identity(captcha_ttl_seconds=0, sms_code_ttl_seconds=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        api = ApiDriver(c)
        r = await api.request_sms(random_phone(), "register")
        assert r.status_code == 400 and r.json()["code"] == "captcha_invalid"
    app = await make_identity(sms_code_ttl_seconds=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        api = ApiDriver(c)
        phone = random_phone()
        code = await api.sms_code(phone, "register")
        r = await c.post(
            "/api/v1/auth/register", json={"enterprise_name": "某公司", "phone": phone, "sms_code": code}
        )
        assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"


class CountingHasher:
    """argon2's hasher with a count of the hashes running at once (in worker threads)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0

    def _timed(self, fn: Any, *args: Any) -> Any:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # a hash that takes a while, so overlapping ones would overlap
            return fn(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self._timed(self.inner.hash, password)

    def verify(self, stored: str, password: str) -> bool:
        return self._timed(self.inner.verify, stored, password)


@pytest.mark.parametrize(("concurrency", "parallel"), [(1, False), (4, True)])
async def test_a_login_burst_hashes_at_most_password_hash_concurrency_passwords_at_once(
    make_identity,
    concurrency: int,
    parallel: bool,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 17, section 9: each argon2 hash takes its memory cost (19 MiB by default); a burst
    of sign-ins waits for a slot instead of allocating it N times over the pod's limit."""
    app = await make_identity(password_hash_concurrency=concurrency)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        api = ApiDriver(c)
        session = await api.register()
        ok = await c.put(
            "/api/v1/me/password", json={"new_password": "Gx2024-voucher"}, headers=session.headers
        )
        assert ok.status_code == 204
        ctx = app.state.identity
        hasher = ctx.hasher = CountingHasher(ctx.hasher)
        attempts = [(session.phone, "Gx2024-voucher")] * 4 + [(random_phone(), "Gx2024-voucher")] * 4
        answers = await asyncio.gather(*(api.password_login(phone, pw) for phone, pw in attempts))
    assert [r.status_code for r in answers[:4]] == [200] * 4, [r.text for r in answers]
    assert {(r.status_code, r.json()["code"]) for r in answers[4:]} == {(401, "invalid_credentials")}
    assert hasher.calls == 8  # every attempt hashed (unknown phones too, for the timing)
    if parallel:
        assert hasher.most > 1  # the counter sees overlapping hashes when they are allowed
    else:
        assert hasher.most == 1
