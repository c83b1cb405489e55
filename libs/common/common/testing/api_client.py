"""A small driver of the public API for tests (service tests, gateway tests, end-to-end):
gets past the captcha and SMS codes with the development endpoints, as API.md's dev
section intends."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import httpx


def random_phone() -> str:
    return f"13{random.randint(0, 999_999_999):09d}"


@dataclass
class Session:
    phone: str
    access_token: str
    refresh_token: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class ApiDriver:
    def __init__(self, client: httpx.AsyncClient, prefix: str = "/api/v1") -> None:
        self.client = client
        self.prefix = prefix

    def url(self, path: str) -> str:
        return self.prefix + path

    async def captcha(self) -> tuple[str, str]:
        r = await self.client.get(self.url("/captcha"))
        r.raise_for_status()
        captcha_id = r.json()["captcha_id"]
        a = await self.client.get(self.url(f"/dev/captcha/{captcha_id}"))
        a.raise_for_status()
        return captcha_id, a.json()["answer"]

    async def request_sms(self, phone: str, purpose: str, **headers: str) -> httpx.Response:
        captcha_id, answer = await self.captcha()
        return await self.client.post(
            self.url("/sms-codes"),
            json={"phone": phone, "purpose": purpose, "captcha_id": captcha_id, "captcha_answer": answer},
            headers=headers or None,
        )

    async def sms_code(self, phone: str, purpose: str) -> str:
        r = await self.request_sms(phone, purpose)
        assert r.status_code == 202, r.text
        latest = await self.client.get(self.url("/dev/sms-codes/latest"), params={"phone": phone})
        latest.raise_for_status()
        assert latest.json()["purpose"] == purpose
        return str(latest.json()["code"])

    async def register(
        self, phone: str | None = None, enterprise_name: str = "广西测试制造有限公司"
    ) -> Session:
        phone = phone or random_phone()
        code = await self.sms_code(phone, "register")
        r = await self.client.post(
            self.url("/auth/register"),
            json={"enterprise_name": enterprise_name, "phone": phone, "sms_code": code},
        )
        assert r.status_code == 201, r.text
        return self._session(phone, r.json())

    async def sms_login(self, phone: str) -> Session:
        code = await self.sms_code(phone, "login")
        captcha_id, answer = await self.captcha()
        r = await self.client.post(
            self.url("/auth/login/sms"),
            json={"phone": phone, "sms_code": code, "captcha_id": captcha_id, "captcha_answer": answer},
        )
        assert r.status_code == 200, r.text
        return self._session(phone, r.json())

    async def password_login(self, phone: str, password: str) -> httpx.Response:
        captcha_id, answer = await self.captcha()
        return await self.client.post(
            self.url("/auth/login"),
            json={"phone": phone, "password": password, "captcha_id": captcha_id, "captcha_answer": answer},
        )

    async def login(self, phone: str, password: str) -> Session:
        r = await self.password_login(phone, password)
        assert r.status_code == 200, r.text
        return self._session(phone, r.json())

    async def refresh(self, session: Session) -> Session:
        r = await self.client.post(self.url("/auth/refresh"), json={"refresh_token": session.refresh_token})
        assert r.status_code == 200, r.text
        return self._session(session.phone, r.json())

    @staticmethod
    def _session(phone: str, body: dict[str, Any]) -> Session:
        return Session(
            phone=phone, access_token=body["access_token"], refresh_token=body["refresh_token"], body=body
        )
