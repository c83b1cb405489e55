"""The saga journeys' world: quota, orders, contracts and payments, real, in the saga harness
(on the real broker or the in-process bus); catalog and identity faked (a product dict, files,
the test issuer's tokens). Many cells share one world, each with organisations, a voucher and
an order of its own."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, HTTPException

from common.logging import configure_logging
from common.testing.saga import SagaHarness, fake_identity

from .journey import POOL, RETRIES, SERVICES, World


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def catalog(products: dict[str, dict[str, Any]]) -> FastAPI:
    """catalog's ``GET /internal/products/{id}`` from a dict."""
    app = FastAPI()

    @app.get("/internal/products/{product_id}")
    async def product(product_id: str) -> dict[str, Any]:
        if product_id not in products:
            raise HTTPException(404)
        return products[product_id]

    return app


@pytest_asyncio.fixture
async def world(saga: Callable[..., Awaitable[SagaHarness]]) -> World:
    identity_app, files = fake_identity()
    products: dict[str, dict[str, Any]] = {}
    h = await saga(
        *SERVICES,
        overrides={s: {"bus_retry_delays": RETRIES} for s in SERVICES},
        peers={"identity": identity_app, "catalog": catalog(products)},
        pool_size=POOL,
    )
    configure_logging("WARNING", json=False, stream=sys.stderr)  # each app configured its own
    return await World.start(h, products, files)
