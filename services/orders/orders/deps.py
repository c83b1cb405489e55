"""Annotated dependencies: load, lock and authorise an order once.

An order is seen by its enterprise, its provider and staff; anyone else gets a 404 (an
organisation never learns that another's order exists). Routes that change an order get it
locked (``SELECT ... FOR UPDATE``), like the event handlers and timers that change it; what
another service must say first is asked before the lock (``ProviderStanding``), never under it.
A route that only shows an order takes ``VisibleOrder``: the same 404, on its read-only session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from common.app import ClientsDep, ReadSessionDep, SessionDep, get_settings
from common.auth import CurrentUser, EnterpriseUser, Principal, ProviderUser
from common.db import lock
from orders import errors, service
from orders.config import Settings
from orders.domain import Actor
from orders.models import Order

OrderId = Annotated[str, Path(min_length=1, max_length=36, description="订单编号")]


SettingsDep = Annotated[Settings, Depends(get_settings)]


def viewer_of(order: Order, principal: Principal) -> Actor | None:
    """How the caller relates to the order: its enterprise, its provider, staff, or nobody."""
    if principal.is_staff:
        return Actor.STAFF
    if principal.org_id is None:
        return None
    if principal.org_id == order.enterprise_id:
        return Actor.ENTERPRISE
    if principal.org_id == order.provider_id:
        return Actor.PROVIDER
    return None


async def visible_order(order_id: OrderId, principal: CurrentUser, session: ReadSessionDep) -> Order:
    """The order as its enterprise, its provider or staff may see it (a 404 for anyone else),
    to show (on the route's read-only session; a change takes a locked dependency)."""
    order = await session.get(Order, order_id)
    if order is None or viewer_of(order, principal) is None:
        raise errors.order_not_found()
    return order


async def enterprise_order(order_id: OrderId, principal: EnterpriseUser, session: SessionDep) -> Order:
    order = await lock(session, Order, order_id)
    if order is None or order.enterprise_id != principal.org_id:
        raise errors.order_not_found()
    return order


async def provider_order(order_id: OrderId, principal: ProviderUser, session: SessionDep) -> Order:
    order = await lock(session, Order, order_id)
    if order is None or order.provider_id != principal.org_id:
        raise errors.order_not_found()
    return order


async def provider_standing(
    principal: ProviderUser, session: SessionDep, clients: ClientsDep
) -> service.Standing:
    """identity's answers about the provider, asked before anything is locked."""
    return await service.provider_standing(session, clients, principal)


ProviderStanding = Annotated[service.Standing, Depends(provider_standing)]


async def active_provider_order(
    standing: ProviderStanding, order_id: OrderId, principal: ProviderUser, session: SessionDep
) -> Order:
    """Accepting starts something new: a suspended provider may not (DESIGN.md). identity is
    asked first (``standing``, no connection held), then the order is locked here and the
    answer judged: another organisation's order is a 404 before anything identity said."""
    order = await provider_order(order_id, principal, session)
    standing.active.result()
    return order


VisibleOrder = Annotated[Order, Depends(visible_order)]
EnterpriseOrder = Annotated[Order, Depends(enterprise_order)]
ProviderOrder = Annotated[Order, Depends(provider_order)]
ActiveProviderOrder = Annotated[Order, Depends(active_provider_order)]
