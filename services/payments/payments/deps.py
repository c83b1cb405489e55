"""Annotated dependencies: load and authorise a resource once.

``PartyPlan``: the order's plan for either party of the deal or staff (404 for anyone
else), to show (on the route's read-only session). Routes that change money check the same
on their own session (``enterprise_plan``) and lock the plan themselves in ``service`` (after
any call to identity, so no lock is held across a network call that can be avoided).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlmodel.ext.asyncio.session import AsyncSession

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser, Principal
from payments import errors
from payments.models import PaymentPlan
from payments.service import is_member_of

OrderId = Annotated[str, Path(max_length=64)]


async def _party_plan(session: AsyncSession, order_id: str, user: Principal) -> PaymentPlan:
    plan = await session.get(PaymentPlan, order_id)
    if plan is None:
        raise errors.plan_not_found()
    if user.is_staff or is_member_of(user, plan.enterprise_id) or is_member_of(user, plan.provider_id):
        return plan
    raise errors.plan_not_found()  # not yours: it does not exist for you


async def party_plan(order_id: OrderId, user: CurrentUser, session: ReadSessionDep) -> PaymentPlan:
    return await _party_plan(session, order_id, user)


async def enterprise_plan(order_id: OrderId, user: CurrentUser, session: SessionDep) -> PaymentPlan:
    plan = await _party_plan(session, order_id, user)
    if not is_member_of(user, plan.enterprise_id):
        raise errors.not_the_enterprise()
    return plan


async def remittable_plan(order_id: str, user: Principal, session: SessionDep) -> PaymentPlan:
    """The plan a transfer is recorded on: before signing there is none yet, which is a
    conflict with the order's state (409 ``contract_not_signed``), not a missing resource."""
    if await session.get(PaymentPlan, order_id) is None:
        raise errors.contract_not_signed()
    return await enterprise_plan(order_id, user, session)


PartyPlan = Annotated[PaymentPlan, Depends(party_plan)]
EnterprisePlan = Annotated[PaymentPlan, Depends(enterprise_plan)]
