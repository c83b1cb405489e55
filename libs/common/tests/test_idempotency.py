"""``Idempotency-Key`` when a command outlives its claim's lease (issue 12, F7).

A claim whose process died is freed when its lease runs out; but a command that is merely
slow (a lock wait, a slow peer) is still running then. A retry with the same key takes the
key over: the first command must not then store its response over the second's, nor give
the second's claim away when it fails, nor commit a second effect. Each claim carries a
token of its own; ``done`` and the give-back act only on the claim that holds it.

The commands here are the shape of orders' ``POST /orders`` (claim, effect, ``done``, one
commit) on a real PostgreSQL database, with a lease of a fraction of a second.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from alembic import command
from fastapi import Depends, FastAPI, Header, Request
from sqlalchemy import text

from common import registry
from common.db import Database, alembic_config, migrate
from common.errors import Problem, install_error_handlers
from common.idempotency import Idempotency
from common.tables import create_common_schema

LEASE = 0.3


async def claim_key(request: Request, key: Annotated[str, Header(alias="Idempotency-Key")]) -> Idempotency:
    """The service's Idempotency dependency, with a short lease."""
    return Idempotency(request.app.state.db, key, request.method, request.url.path, lease_seconds=LEASE)


ClaimDep = Annotated[Idempotency, Depends(claim_key)]


class Shop:
    """A service with one idempotent command; a request can be held inside it (after its
    effect, before ``done``) and released to finish or to fail."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.holds: dict[str, asyncio.Event] = {}
        self.inside: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()
        self.app = FastAPI()
        self.app.state.db = db
        install_error_handlers(self.app)
        self.app.post("/orders", status_code=201)(self.submit)

    async def submit(
        self, body: dict[str, Any], idem: ClaimDep, x_hold: Annotated[str, Header()] = ""
    ) -> Any:
        hold = x_hold
        async with self.db.session() as session, idem.claim("user-1", body, session) as claim:
            if claim.replay is not None:
                return claim.replay
            order_id = str(uuid.uuid4())
            await session.execute(
                text("INSERT INTO orders_made (id, note) VALUES (:i, :n)"),
                {"i": order_id, "n": body.get("note", "")},
            )
            if hold:
                self.inside.setdefault(hold, asyncio.Event()).set()
                await self.holds.setdefault(hold, asyncio.Event()).wait()
                if hold in self.fail:
                    raise Problem(422, "refused", "订单不符合条件")
            out = {"id": order_id, "hold": hold}
            await claim.done(201, out)
            await session.commit()
            return out

    async def entered(self, hold: str) -> None:
        await asyncio.wait_for(self.inside.setdefault(hold, asyncio.Event()).wait(), 10)

    def release(self, hold: str, *, fail: bool = False) -> None:
        if fail:
            self.fail.add(hold)
        self.holds.setdefault(hold, asyncio.Event()).set()

    async def orders(self) -> list[str]:
        async with self.db.session() as s:
            return [r[0] for r in await s.execute(text("SELECT id FROM orders_made ORDER BY id"))]


@pytest_asyncio.fixture
async def shop(fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    db = Database(await fresh_db("idem"), pool_size=6)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_common_schema)
        await conn.execute(text("CREATE TABLE orders_made (id text PRIMARY KEY, note text NOT NULL)"))
    s = Shop(db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=s.app), base_url="http://shop")
    try:
        yield s, client
    finally:
        for event in s.holds.values():
            event.set()
        await client.aclose()
        await db.dispose()


def post(client: httpx.AsyncClient, key: str, hold: str = "") -> Awaitable[httpx.Response]:
    return client.post(
        "/orders",
        json={"note": "一份订单"},
        headers={"Idempotency-Key": key, **({"X-Hold": hold} if hold else {})},
    )


async def test_a_command_that_outlived_its_lease_does_not_add_a_second_order_or_overwrite_the_first(
    shop: tuple[Shop, httpx.AsyncClient],
) -> None:
    s, client = shop
    first = asyncio.create_task(post(client, "k1", hold="first"))
    await s.entered("first")
    await asyncio.sleep(LEASE + 0.2)  # the first is still running when its lease runs out

    second = await post(client, "k1")  # a retry takes the key over and completes
    assert second.status_code == 201, second.text
    s.release("first")
    late = await first

    assert late.status_code == 409, late.text
    assert late.json()["code"] == "idempotency_claim_lost"
    assert await s.orders() == [second.json()["id"]], "one order from one key"
    again = await post(client, "k1")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == second.json(), "the stored response is the second's"


async def test_a_command_that_outlived_its_lease_and_failed_does_not_give_away_the_claim_that_took_over(
    shop: tuple[Shop, httpx.AsyncClient],
) -> None:
    s, client = shop
    first = asyncio.create_task(post(client, "k2", hold="first"))
    await s.entered("first")
    await asyncio.sleep(LEASE + 0.2)
    second = asyncio.create_task(post(client, "k2", hold="second"))  # takes the key over
    await s.entered("second")

    s.release("first", fail=True)  # the first fails: it gives back only its own claim
    assert (await first).status_code == 422
    third = await post(client, "k2")
    assert third.status_code == 409 and third.json()["code"] == "idempotency_key_in_flight", third.text

    s.release("second")
    done = await second
    assert done.status_code == 201
    assert await s.orders() == [done.json()["id"]]


async def test_a_failed_command_gives_its_key_back_and_a_retry_succeeds(
    shop: tuple[Shop, httpx.AsyncClient],
) -> None:
    s, client = shop
    first = asyncio.create_task(post(client, "k3", hold="first"))
    await s.entered("first")
    s.release("first", fail=True)
    assert (await first).status_code == 422
    assert await s.orders() == []
    retry = await post(client, "k3")
    assert retry.status_code == 201
    assert await s.orders() == [retry.json()["id"]]


async def test_commands_failing_at_once_never_wait_for_a_connection_the_pool_cannot_give(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """The claim rolls the request's session back before it gives the key back: failed
    commands holding every pooled connection would otherwise each wait for one more (the
    give-back's) until the pool timed out. No route has to remember to do it."""
    db = Database(await fresh_db("idem_pool"), pool_size=1)  # two connections in all
    async with db.engine.begin() as conn:
        await conn.run_sync(create_common_schema)
        await conn.execute(text("CREATE TABLE orders_made (id text PRIMARY KEY, note text NOT NULL)"))
    s = Shop(db)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=s.app), base_url="http://shop"
        ) as client:
            both = [asyncio.create_task(post(client, f"kp{i}", hold=f"p{i}")) for i in range(2)]
            for i in range(2):  # both inside, each holding its session's connection
                await s.entered(f"p{i}")
            for i in range(2):
                s.release(f"p{i}", fail=True)
            answers = await asyncio.wait_for(asyncio.gather(*both), timeout=10)
            assert [a.status_code for a in answers] == [422, 422]
            retry = await post(client, "kp0")
            assert retry.status_code == 201, retry.text
    finally:
        await db.dispose()


# --- every service's database gets the token column ----------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("service", [s.name for s in registry.SERVICES])
async def test_a_database_made_before_claims_had_tokens_gets_the_column(
    service: str, fresh_db: Callable[[str], Awaitable[str]]
) -> None:
    """A service older than claim tokens has a migration that adds the column to a database
    made before it; a service born after (demands) has it from its first migration."""
    migrations = ROOT / "services" / service / service / "migrations"
    url = await fresh_db(f"mig_{service}")
    db = Database(url, pool_size=1)
    try:
        for token_migration in (migrations / "versions").glob("*_idempotency_claim_token.py"):
            before = re.search(r'^down_revision: .* = "(\w+)"', token_migration.read_text(), re.MULTILINE)
            assert before is not None
            await asyncio.to_thread(command.upgrade, alembic_config(migrations, url), before.group(1))
            async with db.transaction() as s:  # as such a database was: no token column
                await s.execute(text("ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS token"))
        await migrate(migrations, url)
        async with db.session() as s:
            columns = {
                r[0]
                for r in await s.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'idempotency_keys'"
                    )
                )
            }
        assert "token" in columns
    finally:
        await db.dispose()
