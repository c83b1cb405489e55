"""FastAPI dependencies of identity's routers: the context, the caller's address, and the
caller's own rows loaded (and locked where a change follows) once, before the route runs.

    async def route(member: Membership, session: SessionDep) -> ...:
        user, org = member        # an active owner or agent, and their organisation

A route that only reads takes the ``Read*`` twin of a dependency: the same checks (who may
see it, 404 for another's), on the route's read-only session and never locked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser
from common.http import client_ip
from identity import errors
from identity.context import IdentityContext
from identity.models import IdentityVerification, Organization, User
from identity.service import organizations as org_service


async def get_ctx(request: Request) -> IdentityContext:
    ctx: IdentityContext = request.app.state.identity
    return ctx


async def get_client_ip(request: Request) -> str:
    return client_ip(request.scope, request.app.state.settings.trusted_proxy_hops)


async def active_user(principal: CurrentUser, session: SessionDep) -> User:
    """The caller's account, active (401 ``unauthenticated`` for a removed one)."""
    return await org_service.active_user(session, principal)


async def read_active_user(principal: CurrentUser, session: ReadSessionDep) -> User:
    """:func:`active_user`, for a route that only reads."""
    return await org_service.active_user(session, principal)


async def uploader(user: Annotated[User, Depends(active_user)], session: SessionDep) -> User:
    """An active user who may upload a file: staff, or a member of an organisation that is not
    suspended (an upload starts something new: a claim's invoice, an application's proof)."""
    if user.organization_id is not None:
        org = await session.get(Organization, user.organization_id)
        if org is not None and org.suspended:
            raise errors.organization_suspended(org.suspended_reason)
    return user


async def membership(principal: CurrentUser, session: SessionDep) -> tuple[User, Organization]:
    """The caller as an owner or agent, and their organisation (404 when they have none)."""
    return await org_service.member(session, principal)


async def locked_membership(principal: CurrentUser, session: SessionDep) -> tuple[User, Organization]:
    """:func:`membership` with the organisation locked (FOR UPDATE) for a change."""
    return await org_service.member(session, principal, lock=True)


async def read_membership(principal: CurrentUser, session: ReadSessionDep) -> tuple[User, Organization]:
    """:func:`membership`, for a route that only reads."""
    return await org_service.member(session, principal)


async def _own_verification(session: AsyncSession, verification_id: str, user: User) -> IdentityVerification:
    """A face check of the caller's own (404 for another person's: no hint that it exists)."""
    row = await session.get(IdentityVerification, verification_id)
    if row is None or row.user_id != user.id:
        raise errors.verification_not_found()
    return row


VerificationId = Annotated[str, Path(min_length=1, max_length=36)]


async def own_verification(
    verification_id: VerificationId, user: Annotated[User, Depends(active_user)], session: SessionDep
) -> IdentityVerification:
    return await _own_verification(session, verification_id, user)


async def read_own_verification(
    verification_id: VerificationId, user: Annotated[User, Depends(read_active_user)], session: ReadSessionDep
) -> IdentityVerification:
    """:func:`own_verification`, for a route that only reads."""
    return await _own_verification(session, verification_id, user)


# An id in a path: checked by its type (at most 36 characters, a uuid's length), never cut.
Id = Annotated[str, Path(min_length=1, max_length=36, description="编号")]
Ctx = Annotated[IdentityContext, Depends(get_ctx)]
ClientIp = Annotated[str, Depends(get_client_ip)]
ReadActiveUser = Annotated[User, Depends(read_active_user)]
Uploader = Annotated[User, Depends(uploader)]
Membership = Annotated[tuple[User, Organization], Depends(membership)]
ReadMembership = Annotated[tuple[User, Organization], Depends(read_membership)]
LockedMembership = Annotated[tuple[User, Organization], Depends(locked_membership)]
OwnVerification = Annotated[IdentityVerification, Depends(own_verification)]
ReadOwnVerification = Annotated[IdentityVerification, Depends(read_own_verification)]
