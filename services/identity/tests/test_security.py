"""What an outside security probe of identity found (issue 6, section 2), each as a test that
failed before its fix."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from common.testing.api_client import ApiDriver


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


ADMIN_PHONE, ADMIN_PASSWORD = "13900000002", "Admin-Pass-2024"


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59", "1899-12-31"]
)
async def test_an_out_of_range_date_is_a_422_not_a_500(make_identity, since: str) -> None:  # type: ignore[no-untyped-def]
    """Finding 5: one date-time type (common.datetimes.Moment) refuses what cannot be stored."""
    app: FastAPI = await make_identity(admin_phone=ADMIN_PHONE, admin_password=ADMIN_PASSWORD)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        admin = await ApiDriver(c).login(ADMIN_PHONE, ADMIN_PASSWORD)
        r = await c.get("/api/v1/admin/audit-log", params={"since": since}, headers=admin.headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert "日期时间超出范围" in r.json()["detail"]
        fine = await c.get(
            "/api/v1/admin/audit-log", params={"since": "2024-09-13T00:00:00"}, headers=admin.headers
        )
        assert fine.status_code == 200
