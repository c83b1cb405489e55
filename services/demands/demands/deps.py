"""Annotated dependencies: load, lock and authorise a resource once.

A demand is the enterprise's own (``OwnDemand``, locked: 404 for another organisation's), a
reviewer's (``ReviewedDemand``, locked), or on the public board (``BoardDemand``: published
and its enterprise not suspended, else 404). A message is its writer's or staff's
(``StaffMessage``, locked, to reply or close; ``ReadStaffMessage`` to show it, on the route's
read-only session).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlmodel.ext.asyncio.session import AsyncSession

from common import orgs
from common.app import ClientsDep, ReadSessionDep, SessionDep
from common.auth import (
    AdminUser,
    CurrentUser,
    EnterpriseUser,
    Principal,
    ReviewerUser,
    StaffUser,
)
from common.db import lock
from demands import errors
from demands.models import Demand, Notice, PlatformMessage

Id = Annotated[str, Path(min_length=1, max_length=36)]


async def active_org(principal: CurrentUser, session: SessionDep, clients: ClientsDep) -> orgs.OrgView | None:
    """The caller's organisation as it is now; a suspended one may not publish, respond or write."""
    return await orgs.require_active(session, principal, clients)


ActiveOrg = Annotated[orgs.OrgView | None, Depends(active_org)]


def _own(demand: Demand | None, principal: Principal) -> Demand:
    if demand is None or demand.org_id != principal.org_id:
        raise errors.demand_not_found()  # another organisation's demand does not exist for it
    return demand


async def own_demand(demand_id: Id, principal: EnterpriseUser, session: SessionDep) -> Demand:
    """The enterprise's own demand, locked: the edit, the close and a reviewer's decision of
    the same demand are decided one after the other."""
    return _own(await lock(session, Demand, demand_id), principal)


async def my_demand(demand_id: Id, principal: EnterpriseUser, session: ReadSessionDep) -> Demand:
    return _own(await session.get(Demand, demand_id), principal)


async def reviewed_demand(demand_id: Id, _reviewer: ReviewerUser, session: SessionDep) -> Demand:
    demand = await lock(session, Demand, demand_id)
    if demand is None:
        raise errors.demand_not_found()
    return demand


async def _on_board(session: AsyncSession, demand: Demand | None, *, closed_too: bool = False) -> Demand:
    shown = ("published", "closed") if closed_too else ("published",)
    if demand is None or demand.status not in shown or await orgs.is_suspended(session, demand.org_id):
        raise errors.demand_not_found()  # a suspended enterprise's demands leave the board
    return demand


async def board_demand(demand_id: Id, session: ReadSessionDep) -> Demand:
    """A published demand of an organisation that is not suspended."""
    return await _on_board(session, await session.get(Demand, demand_id))


async def respondable_demand(demand_id: Id, session: SessionDep) -> Demand:
    """The demand a provider answers, locked (a response and a close are decided one after the
    other); a closed one is found, so the provider is told it was closed."""
    return await _on_board(session, await lock(session, Demand, demand_id), closed_too=True)


async def _message(session: AsyncSession, message_id: str, *, locked: bool) -> PlatformMessage:
    if locked:
        message = await lock(session, PlatformMessage, message_id)
    else:
        message = await session.get(PlatformMessage, message_id)
    if message is None:
        raise errors.message_not_found()
    return message


async def staff_message(message_id: Id, _staff: StaffUser, session: SessionDep) -> PlatformMessage:
    return await _message(session, message_id, locked=True)


async def read_staff_message(message_id: Id, _staff: StaffUser, session: ReadSessionDep) -> PlatformMessage:
    return await _message(session, message_id, locked=False)


async def notice(notice_id: Id, session: ReadSessionDep) -> Notice:
    row = await session.get(Notice, notice_id)
    if row is None:
        raise errors.notice_not_found()
    return row


async def admin_notice(notice_id: Id, _admin: AdminUser, session: SessionDep) -> Notice:
    row = await lock(session, Notice, notice_id)
    if row is None:
        raise errors.notice_not_found()
    return row


OwnDemand = Annotated[Demand, Depends(own_demand)]
MyDemand = Annotated[Demand, Depends(my_demand)]
ReviewedDemand = Annotated[Demand, Depends(reviewed_demand)]
BoardDemand = Annotated[Demand, Depends(board_demand)]
RespondableDemand = Annotated[Demand, Depends(respondable_demand)]
StaffMessage = Annotated[PlatformMessage, Depends(staff_message)]
ReadStaffMessage = Annotated[PlatformMessage, Depends(read_staff_message)]
PublicNotice = Annotated[Notice, Depends(notice)]
AdminNotice = Annotated[Notice, Depends(admin_notice)]
