from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from fastapi import FastAPI
from stdnum.cn import ric, uscc

from common.testing.api_client import ApiDriver, Session
from common.testing.infra import MakeDb
from common.testing.rabbit import RabbitNamespace
from common.testing.vendor_fakes import FakeVendor, serve
from identity.config import Settings
from identity.main import create_app


def identity_settings(
    database_url: str, rabbit: RabbitNamespace | None, files: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": database_url,
        "storage_url": str(files),
        "bus_retry_delays": [0.05, 0.1, 0.2],
        "outbox_poll_interval": 0.05,
        "timer_poll_interval": 0.05,
        "log_json": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        # The journeys send several codes to one phone within seconds; the limits have their own tests.
        "sms_resend_seconds": 0,
        "sms_daily_cap_per_phone": 1000,
        "sms_daily_cap_per_ip": 100000,
    }
    if rabbit is not None:
        values.update(amqp_url=rabbit.url, bus_exchange=rabbit.exchange, bus_queue_prefix=rabbit.prefix)
    else:
        values.update(bus_transport="inprocess")
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture
async def make_identity(
    fresh_db: MakeDb, rabbit: RabbitNamespace, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    """Start identity (real PostgreSQL + RabbitMQ) with settings overrides; stopped afterwards."""
    stack: list[Any] = []

    async def make(**overrides: Any) -> FastAPI:
        url = overrides.pop("database_url", None) or await fresh_db("identity", schema="identity")
        app = create_app(identity_settings(url, rabbit, tmp_path / "files", **overrides))
        cm = app.router.lifespan_context(app)
        await cm.__aenter__()
        stack.append(cm)
        return app

    yield make
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def identity_app(make_identity: Callable[..., Awaitable[FastAPI]]) -> FastAPI:
    return await make_identity()


@pytest_asyncio.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=identity_app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        yield c


@pytest_asyncio.fixture
async def api(client: httpx.AsyncClient) -> ApiDriver:
    return ApiDriver(client)


# --- organisations, events and test data (organisation, agent, bank, files, admin tests) -------


@pytest.fixture
def relaxed_sms() -> dict[str, Any]:
    """Settings for tests that need several SMS codes for one phone (no resend interval, no
    daily caps): ``identity_app`` overridden as ``make_identity(**relaxed_sms)``."""
    return {"sms_resend_seconds": 0, "sms_daily_cap_per_phone": 1000, "sms_daily_cap_per_ip": 10_000}


def make_uscc() -> str:
    """A valid 统一社会信用代码 (GB 32100 check digit): 91 (enterprise) + Nanning + random."""
    body = "91450100" + "".join(random.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc.calc_check_digit(body)


def make_resident_id(birth: str = "19850312") -> str:
    """A valid resident ID number (GB 11643 check digit) from Nanning."""
    body = f"450102{birth}{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


@dataclass
class EventProbe:
    """A queue of the test's own bound to the test exchange (bind it BEFORE the action)."""

    queue: AbstractQueue

    async def next(self, within: float = 10.0) -> tuple[dict[str, Any], AbstractIncomingMessage]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            message = await self.queue.get(no_ack=True, fail=False)
            if message is not None:
                return json.loads(message.body), message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no event on {self.queue.name} within {within}s")
            await asyncio.sleep(0.05)

    async def assert_none(self, within: float = 0.5) -> None:
        await asyncio.sleep(within)
        message = await self.queue.get(no_ack=True, fail=False)
        assert message is None, f"unexpected event {message.type if message else ''}"


@pytest_asyncio.fixture
async def events(rabbit: RabbitNamespace) -> AsyncIterator[Callable[[str], Awaitable[EventProbe]]]:
    """``probe = await events("identity.organization_certified")`` once the app has started."""
    connection = await aio_pika.connect(rabbit.url, timeout=10)
    channel = await connection.channel()

    async def listen(routing_key: str) -> EventProbe:
        exchange = await channel.get_exchange(rabbit.exchange, ensure=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=routing_key)
        return EventProbe(queue)

    yield listen
    await connection.close()


class Flows:
    """The steps most organisation tests start from, done through the public API."""

    def __init__(self, client: httpx.AsyncClient, api: ApiDriver) -> None:
        self.client = client
        self.api = api

    def certification(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "role": "enterprise",
            "name": f"广西测试制造有限公司{random.randint(1000, 9999)}",
            "uscc": make_uscc(),
            "legal_rep_name": "张三丰",
            "legal_rep_id_type": "resident_id",
            "legal_rep_id_number": make_resident_id(),
            "agreed": True,
        }
        body.update(overrides)
        return body

    async def certify(self, session: Session, **overrides: Any) -> httpx.Response:
        body = self.certification(**overrides)
        if "sms_code" not in body:
            body["sms_code"] = await self.api.sms_code(session.phone, "certify")
        return await self.client.post(
            "/api/v1/me/organization/certification", json=body, headers=session.headers
        )

    async def certified(self, **overrides: Any) -> tuple[Session, dict[str, Any]]:
        """A new owner whose organisation is certified; the session carries the new token."""
        session = await self.api.register()
        r = await self.certify(session, **overrides)
        assert r.status_code == 200, r.text
        session.access_token = r.json()["access_token"]
        return session, r.json()["organization"]


@pytest_asyncio.fixture
async def flows(client: httpx.AsyncClient, api: ApiDriver) -> Flows:
    return Flows(client, api)


LEGAL_REP = "张三丰"


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    """A loopback server standing for a vendor's HTTP API (SMS, face, enterprise checks)."""
    with serve() as vendor:
        yield vendor


@pytest_asyncio.fixture
async def owner_id(flows: Flows) -> AsyncIterator[tuple[Any, dict[str, Any], str]]:
    """A certified organisation's owner, the organisation and its legal representative's ID
    number (the person a face check is for)."""
    id_number = make_resident_id()
    owner, org = await flows.certified(legal_rep_name=LEGAL_REP, legal_rep_id_number=id_number)
    yield owner, org, id_number
