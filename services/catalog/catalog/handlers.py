"""Events catalog consumes: inbox + ordering guard + aggregate lock + one commit.

What the listing counts, per product (each at most once per order):
- 申请次数 (``applications``): orders submitted for it (``orders.order_submitted``);
- 销量 (``sales``): signed deals, and 销售额 (``revenue_fen``): their contract totals
  (``contracts.contract_signed``, which names the order only: the order's row, written on
  submission, maps it to its product; a signing seen first is retried until it is there);
- ``completed``: orders completed (``orders.order_completed``);
- the rating: the average of the orders' evaluations (``orders.order_evaluated``).

Each fact of an order has its own ordering stream (``orders`` and ``contracts`` number their
events per order independently, and catalog sees only some of them), and the order's row
keeps a flag per fact, so a fact delivered twice, under a new event id or out of order,
moves a counter once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog.models import OrderFact, Product
from common.access import register_access_handlers
from common.bus import Consumer, RetryLater
from common.bus.ordering import ordered
from common.db import lock, lock_existing
from common.events import ContractSigned, Envelope, OrderCompleted, OrderEvaluated, OrderSubmitted
from common.orgs import register_org_handlers


async def _fact(session: AsyncSession, order_id: str, product_id: str, provider_id: str) -> OrderFact:
    """The order's row, created if absent, locked."""
    await session.execute(
        pg_insert(OrderFact)
        .values(order_id=order_id, product_id=product_id, provider_id=provider_id)
        .on_conflict_do_nothing()
    )
    fact = await lock_existing(session, OrderFact, order_id)
    return fact


def build_consumer() -> Consumer:
    consumer = Consumer("catalog")
    register_org_handlers(consumer)
    register_access_handlers(consumer)

    @consumer.on(OrderSubmitted.event_type)
    async def submitted(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderSubmitted = event.payload
        # The order's row even for a product catalog does not know, so its signing is not
        # retried forever; locks in one order everywhere: the order's row, then the product
        # (here by the counter's atomic UPDATE: every order of a popular product passes it).
        fact = await _fact(session, p.order_id, p.product_id, p.provider_id)
        if not await ordered(session, consumer.name, event, stream="submitted"):
            return
        if fact.submitted:
            return
        fact.submitted = True
        session.add(fact)
        await session.execute(
            update(Product)
            .where(col(Product.id) == p.product_id)
            .values(applications=col(Product.applications) + 1)
        )

    @consumer.on(ContractSigned.event_type)
    async def signed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractSigned = event.payload
        fact = await lock(session, OrderFact, p.order_id)
        if fact is None:
            raise RetryLater(f"contract of order {p.order_id} signed before catalog saw the order")
        product = await lock(session, Product, fact.product_id)
        if not await ordered(session, consumer.name, event, stream="signed"):
            return
        if fact.signed:
            return
        fact.signed = True
        fact.total_fen = p.total_fen
        session.add(fact)
        if product is not None:
            product.sales += 1
            product.revenue_fen += p.total_fen
            session.add(product)

    @consumer.on(OrderCompleted.event_type)
    async def completed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderCompleted = event.payload
        fact = await _fact(session, p.order_id, p.product_id, p.provider_id)
        product = await lock(session, Product, p.product_id)
        if not await ordered(session, consumer.name, event, stream="completed"):
            return
        if fact.completed or product is None:
            return
        fact.completed = True
        product.completed += 1
        session.add_all([fact, product])

    @consumer.on(OrderEvaluated.event_type)
    async def evaluated(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderEvaluated = event.payload
        fact = await _fact(session, p.order_id, p.product_id, p.provider_id)
        product = await lock(session, Product, p.product_id)
        if not await ordered(session, consumer.name, event, stream="evaluated"):
            return
        if fact.rating is not None or product is None or not 1 <= p.rating <= 5:
            return  # an order is evaluated once
        fact.rating = p.rating
        product.rating_sum += p.rating
        product.rating_count += 1
        session.add_all([fact, product])

    return consumer
