"""quota's test world: the real service (its runtime, consumer, relay, timers) on a fresh
database, joined by the real broker (or the in-process bus), with fake identity and catalog
answering the internal reads (see quota.testing for the helpers)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from common.logging import configure_logging
from common.testing.saga import SagaHarness, fake_identity
from quota.domain.campaigns import campaign_spec
from quota.service.campaigns import put_campaign
from quota.testing import Quota, fake_catalog


@pytest.fixture(autouse=True)
def service_logging() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def make_quota(saga: Callable[..., Awaitable[SagaHarness]]) -> Callable[..., Awaitable[Quota]]:
    async def make(**overrides: Any) -> Quota:
        identity_app, files = fake_identity()
        catalog_app, products = fake_catalog()
        h = await saga(
            "quota",
            peers={"identity": identity_app, "catalog": catalog_app},
            overrides={"quota": {"log_json": False, **overrides}},
        )
        q = Quota(h, files, products)
        async with q.db.transaction() as s:
            await put_campaign(s, q.year, campaign_spec(q.year))
        return q

    return make


@pytest_asyncio.fixture
async def quota(make_quota: Callable[..., Awaitable[Quota]]) -> Quota:
    return await make_quota()
