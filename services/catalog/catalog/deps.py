"""Annotated dependencies: load, lock and authorise a resource once.

A route that only reads takes the ``Read*`` twin of a dependency: the same checks (a member
of an approved provider, 404 for another organisation's product), on the route's read-only
session and never locked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog import errors
from catalog.config import Settings
from catalog.models import Product, Provider, ProviderApplication
from catalog.service import providers as provider_service
from common.app import ClientsDep, ReadSessionDep, SessionDep, get_settings
from common.auth import MEMBER_ROLES, CurrentUser, Principal, ReviewerUser
from common.db import lock
from common.orgs import require_active

SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class ProviderCaller:
    principal: Principal
    provider: Provider

    @property
    def org_id(self) -> str:
        return self.provider.org_id


async def _provider_caller(session: AsyncSession, user: Principal) -> ProviderCaller:
    """A member of an approved provider. Catalog's own provider record decides (a token
    issued before the approval lacks the capability for up to 15 minutes; one issued before
    a revocation would still carry it)."""
    if user.role not in MEMBER_ROLES or not user.org_id:
        raise errors.provider_required()
    provider = await session.get(Provider, user.org_id)
    if provider is None:
        raise errors.provider_not_approved()
    return ProviderCaller(user, provider)


async def _provider_member(user: CurrentUser, session: SessionDep) -> ProviderCaller:
    return await _provider_caller(session, user)


async def _read_provider_member(user: CurrentUser, session: ReadSessionDep) -> ProviderCaller:
    return await _provider_caller(session, user)


async def _active_provider(
    caller: Annotated[ProviderCaller, Depends(_provider_member)], session: SessionDep, clients: ClientsDep
) -> ProviderCaller:
    await require_active(session, caller.principal, clients)
    return caller


# Reads and unlisting (nothing new starts): any member of an approved provider.
ProviderMember = Annotated[ProviderCaller, Depends(_provider_member)]
ReadProviderMember = Annotated[ProviderCaller, Depends(_read_provider_member)]
# Creating, editing, submitting, relisting: an approved provider that is not suspended.
ActiveProvider = Annotated[ProviderCaller, Depends(_active_provider)]


ProductId = Annotated[str, Path(max_length=64)]


async def _load_own_product(
    session: AsyncSession, caller: ProviderCaller, product_id: str, *, locked: bool
) -> Product:
    """The caller's product, locked when ``locked`` (another organisation's is a 404)."""
    if locked:
        product = await lock(session, Product, product_id)
    else:
        product = await session.get(Product, product_id)
    if product is None or product.provider_id != caller.org_id:
        raise errors.product_not_found()
    return product


async def _own_product(caller: ProviderMember, session: SessionDep, product_id: ProductId) -> Product:
    return await _load_own_product(session, caller, product_id, locked=True)


async def _read_own_product(
    caller: ReadProviderMember, session: ReadSessionDep, product_id: ProductId
) -> Product:
    return await _load_own_product(session, caller, product_id, locked=False)


OwnProduct = Annotated[Product, Depends(_own_product)]
ReadOwnProduct = Annotated[Product, Depends(_read_own_product)]


async def _any_product(
    _reviewer: ReviewerUser, session: SessionDep, product_id: Annotated[str, Path(max_length=64)]
) -> Product:
    product = await lock(session, Product, product_id)
    if product is None:
        raise errors.product_not_found()
    return product


ReviewedProduct = Annotated[Product, Depends(_any_product)]


async def _application(
    _reviewer: ReviewerUser, session: SessionDep, application_id: Annotated[str, Path(max_length=64)]
) -> ProviderApplication:
    application = await lock(session, ProviderApplication, application_id)
    if application is None:
        raise errors.application_not_found()
    return application


ReviewedApplication = Annotated[ProviderApplication, Depends(_application)]


async def _approvable(
    reviewer: ReviewerUser,
    session: SessionDep,
    clients: ClientsDep,
    application_id: Annotated[str, Path(max_length=64)],
) -> ProviderApplication:
    """An application to approve, locked; identity was asked about the applicant's receiving
    account before the lock, never under it (its state is judged under the lock)."""
    await provider_service.check_receiving_account(session, clients, application_id)
    return await _application(reviewer, session, application_id)


ApprovableApplication = Annotated[ProviderApplication, Depends(_approvable)]
