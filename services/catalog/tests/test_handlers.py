"""The events catalog follows, delivered on the real broker as their publishers will send
them: 申请次数, 销量, 销售额 and the rating move once per order, whatever comes twice or early."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from common.events import ContractSigned, OrderCompleted, OrderEvaluated, OrderSubmitted

if TYPE_CHECKING:
    from conftest import Catalog

pytestmark = pytest.mark.broker


def submitted(order_id: str, product: dict[str, Any]) -> OrderSubmitted:
    return OrderSubmitted(
        order_id=order_id,
        order_no="ORD241201120000001",
        enterprise_id="e-1",
        enterprise_name="广西示范制造有限公司",
        provider_id=product["provider_id"],
        provider_name="广西测试科技服务有限公司",
        product_id=product["id"],
        product_name=product["name"],
        category=product["category"],
        voucher_type="general",
        use_voucher=True,
        price_fen=product["platform_price_fen"],
        max_subsidy_fen=product["max_subsidy_fen"],
    )


def signed(order_id: str, product: dict[str, Any], total_fen: int) -> ContractSigned:
    return ContractSigned(
        order_id=order_id,
        contract_id=str(uuid.uuid4()),
        enterprise_id="e-1",
        provider_id=product["provider_id"],
        total_fen=total_fen,
        subsidy_fen=total_fen // 2,
        payable_fen=total_fen - total_fen // 2,
        deposit_fen=0,
        balance_fen=total_fen - total_fen // 2,
    )


def completed(order_id: str, product: dict[str, Any]) -> OrderCompleted:
    return OrderCompleted(
        order_id=order_id,
        order_no="ORD241201120000001",
        enterprise_id="e-1",
        provider_id=product["provider_id"],
        product_id=product["id"],
        contract_id=None,
        subsidy_fen=0,
        total_fen=0,
    )


def evaluated(order_id: str, product: dict[str, Any], rating: int) -> OrderEvaluated:
    return OrderEvaluated(
        order_id=order_id,
        provider_id=product["provider_id"],
        product_id=product["id"],
        rating=rating,
        content="好",
    )


async def figures(catalog: Catalog, product_id: str) -> dict[str, Any]:
    detail = (await catalog.client.get(f"/api/v1/products/{product_id}")).json()
    return {k: detail[k] for k in ("applications", "sales", "revenue_fen", "rating")}


async def test_submissions_signings_and_evaluations_fill_the_listings_figures(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await catalog.h.publish(submitted(a, product), aggregate_id=a, sequence=1)
    await catalog.h.publish(submitted(b, product), aggregate_id=b, sequence=1)
    await catalog.h.publish(signed(a, product, 30_000_000), aggregate_id=a, sequence=3)
    await catalog.h.publish(completed(a, product), aggregate_id=a, sequence=8)
    await catalog.h.publish(evaluated(a, product, 5), aggregate_id=a, sequence=9)
    await catalog.h.publish(evaluated(b, product, 4), aggregate_id=b, sequence=9)
    await catalog.h.settle()
    assert await figures(catalog, product["id"]) == {
        "applications": 2,
        "sales": 1,  # signed deals
        "revenue_fen": 30_000_000,  # their contract totals
        "rating": 4.5,
    }
    (done,) = (await catalog.sql("SELECT completed FROM products"))[0]
    assert done == 1
    listing = (await catalog.client.get("/api/v1/products?sort=sales")).json()["items"][0]
    assert (listing["sales"], listing["revenue_fen"], listing["rating"]) == (1, 30_000_000, 4.5)


async def test_every_event_delivered_twice_counts_once(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    order = str(uuid.uuid4())
    docs = [
        await catalog.h.publish(submitted(order, product), aggregate_id=order, sequence=1),
        await catalog.h.publish(signed(order, product, 10_000), aggregate_id=order, sequence=3),
        await catalog.h.publish(completed(order, product), aggregate_id=order, sequence=8),
        await catalog.h.publish(evaluated(order, product, 3), aggregate_id=order, sequence=9),
    ]
    await catalog.h.settle()
    for doc in docs:
        await catalog.h.redeliver(doc)  # the same event id again
    # The same facts under new event ids (a publisher's replay): the per-order flags hold.
    await catalog.h.publish(submitted(order, product), aggregate_id=order, sequence=1)
    await catalog.h.publish(signed(order, product, 10_000), aggregate_id=order, sequence=3)
    await catalog.h.publish(evaluated(order, product, 1), aggregate_id=order, sequence=9)
    await catalog.h.settle()
    assert await figures(catalog, product["id"]) == {
        "applications": 1,
        "sales": 1,
        "revenue_fen": 10_000,
        "rating": 3.0,
    }


async def test_a_signing_seen_before_its_order_waits_for_it(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    order = str(uuid.uuid4())
    # Out of order: the signing and the evaluation come first.
    await catalog.h.publish(evaluated(order, product, 5), aggregate_id=order, sequence=9)
    await catalog.h.publish(signed(order, product, 20_000), aggregate_id=order, sequence=3)
    await catalog.h.publish(submitted(order, product), aggregate_id=order, sequence=1)
    await catalog.h.settle()

    async def counted() -> bool:
        return (await figures(catalog, product["id"]))["sales"] == 1

    await catalog.h.eventually(counted, within=15)
    await catalog.h.settle()
    assert await figures(catalog, product["id"]) == {
        "applications": 1,
        "sales": 1,
        "revenue_fen": 20_000,
        "rating": 5.0,
    }


async def test_a_crash_in_the_middle_of_a_handler_counts_once_when_redelivered(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    order = str(uuid.uuid4())
    catalog.h.crash("catalog", "orders.order_submitted", after_statements=3)
    await catalog.h.publish(submitted(order, product), aggregate_id=order, sequence=1)
    await catalog.h.settle()

    async def counted() -> bool:
        return (await figures(catalog, product["id"]))["applications"] == 1

    await catalog.h.eventually(counted, within=15)


async def test_an_order_of_an_unknown_product_changes_no_product(catalog: Catalog) -> None:
    order = str(uuid.uuid4())
    ghost = {
        "id": "no-such-product",
        "provider_id": "p",
        "name": "x",
        "category": "其他服务",
        "platform_price_fen": 1,
        "max_subsidy_fen": 0,
    }
    await catalog.h.publish(submitted(order, ghost), aggregate_id=order, sequence=1)
    await catalog.h.publish(signed(order, ghost, 100), aggregate_id=order, sequence=3)
    await catalog.h.settle()
    assert await catalog.sql("SELECT order_id, signed FROM catalog_order_facts") == [(order, True)]
    assert await catalog.sql("SELECT id FROM products") == []
