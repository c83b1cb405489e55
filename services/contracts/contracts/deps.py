"""Annotated dependencies: load and authorise a contract once (either party, or staff).

``ReadableContract`` loads it on the write session for a route that changes it (the service
then locks it); ``ShownContract`` and ``OrderContract`` on the route's read-only session, for
a route that only shows it. The same 404 for anyone else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser, Principal
from contracts import errors
from contracts.context import ContractsContext
from contracts.models import Contract


async def get_ctx(request: Request) -> ContractsContext:
    return request.app.state.contracts


Ctx = Annotated[ContractsContext, Depends(get_ctx)]


def may_read(contract: Contract, principal: Principal) -> bool:
    return principal.is_staff or (
        principal.org_id is not None and principal.org_id in (contract.enterprise_id, contract.provider_id)
    )


async def _readable(session: AsyncSession, contract_id: str, user: Principal) -> Contract:
    """The contract when the caller is one of its parties or staff; else 404 (another's
    contract does not exist for them)."""
    contract = await session.get(Contract, contract_id)
    if contract is None or not may_read(contract, user):
        raise errors.contract_not_found()
    return contract


async def readable_contract(contract_id: str, session: SessionDep, user: CurrentUser) -> Contract:
    return await _readable(session, contract_id, user)


async def shown_contract(contract_id: str, session: ReadSessionDep, user: CurrentUser) -> Contract:
    """:func:`readable_contract`, for a route that only reads."""
    return await _readable(session, contract_id, user)


async def order_contract(order_id: str, session: ReadSessionDep, user: CurrentUser) -> Contract:
    contract = (await session.exec(select(Contract).where(col(Contract.order_id) == order_id))).first()
    if contract is None or not may_read(contract, user):
        raise errors.contract_not_found()
    return contract


ReadableContract = Annotated[Contract, Depends(readable_contract)]
ShownContract = Annotated[Contract, Depends(shown_contract)]
OrderContract = Annotated[Contract, Depends(order_contract)]
