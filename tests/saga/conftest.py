"""The saga journeys' world: one harness per module and transport (quota, orders, contracts and
payments, real; catalog and identity faked), reused by many cells, each with organisations,
a voucher and an order of its own."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from common.db import connect
from common.logging import configure_logging
from common.settings import database_in
from common.testing.plugin import drop_database, require_broker, unique
from common.testing.rabbit import RabbitNamespace
from common.testing.saga import SagaHarness, fake_identity

from .journey import POOL, RETRIES, SERVICES, World, probe


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def world_harness(
    kind: str, postgres_server: str, rabbit: RabbitNamespace | None, made: list[str]
) -> SagaHarness:
    async def fresh_db(hint: str = "t") -> str:
        name = unique(f"t_{hint}")[:60]
        conn = await connect(database_in(postgres_server, "postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        made.append(name)
        return database_in(postgres_server, name)

    return SagaHarness(kind, fresh_db, rabbit)


async def start_world(h: SagaHarness) -> World:
    configure_logging("WARNING", json=False, stream=sys.stderr)
    identity_app, files = fake_identity()
    products: dict[str, dict[str, Any]] = {}
    catalog_app = catalog(products)
    overrides = {s: {"bus_retry_delays": RETRIES} for s in SERVICES}
    await h.start(
        *SERVICES,
        overrides=overrides,
        peers={"identity": identity_app, "catalog": catalog_app},
        pool_size=POOL,
    )
    configure_logging("WARNING", json=False, stream=sys.stderr)  # each app configured its own
    return await World.start(h, products, files)


def catalog(products: dict[str, dict[str, Any]]) -> Any:
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/internal/products/{product_id}")
    async def product(product_id: str) -> dict[str, Any]:
        if product_id not in products:
            raise HTTPException(404)
        return products[product_id]

    return app


# One world per transport, on one xdist worker each (``make test`` runs ``--dist loadgroup``):
# starting four services and probing every branch is paid once per transport, and the
# shared server's connection budget holds at most two worlds.
WORLDS = [
    pytest.param("rabbitmq", marks=[pytest.mark.broker, pytest.mark.xdist_group("lag-rabbitmq")]),
    pytest.param("inprocess", marks=pytest.mark.xdist_group("lag-inprocess")),
]


@pytest_asyncio.fixture(scope="module", params=WORLDS)
async def world(
    request: pytest.FixtureRequest, postgres_server: str, amqp_url_or_none: str | None
) -> AsyncIterator[World]:
    """The four services on one transport for the whole module, every branch probed once
    with nothing held (``world.baseline``: those cells, judged)."""
    kind = str(request.param)
    rabbit = None
    if kind == "rabbitmq":
        url = require_broker(amqp_url_or_none, request)
        tag = uuid.uuid4().hex[:10]
        rabbit = RabbitNamespace(url=url, exchange=f"test.{tag}.events", prefix=f"test.{tag}.")
    made: list[str] = []
    h = world_harness(kind, postgres_server, rabbit, made)
    try:
        started = time.monotonic()
        w = await start_world(h)
        up = time.monotonic()
        w.baseline = await probe(w)
        print(
            f"\n[lag] {kind}: four services up in {up - started:.1f}s, every branch probed in {time.monotonic() - up:.1f}s"
        )
        yield w
    finally:
        await h.close()
        if rabbit is not None:
            for t in rabbit.transports:
                try:
                    await t.stop()
                except Exception:  # noqa: BLE001 - closing on the way out
                    pass
            await rabbit.cleanup()
        for name in made:
            await drop_database(postgres_server, name)
