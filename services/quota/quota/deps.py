"""Annotated dependencies: load, lock and authorise a resource once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from common.app import ReadSessionDep, SessionDep, get_settings
from common.auth import EnterpriseUser
from common.numbers import shanghai_now
from quota import errors
from quota.config import Settings
from quota.models import Campaign, Voucher
from quota.service.campaigns import campaign_for

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def _campaign(session: AsyncSession) -> Campaign:
    campaign = await campaign_for(session, shanghai_now().date())
    if campaign is None:
        raise errors.no_campaign()
    return campaign


async def current_campaign(session: SessionDep) -> Campaign:
    return await _campaign(session)


async def read_campaign(session: ReadSessionDep) -> Campaign:
    """The same, for a route that only reads (on its read-only session)."""
    return await _campaign(session)


CurrentCampaign = Annotated[Campaign, Depends(current_campaign)]
ReadCampaign = Annotated[Campaign, Depends(read_campaign)]


async def owned_voucher(voucher_id: str, user: EnterpriseUser, session: ReadSessionDep) -> Voucher:
    """The caller's own voucher, to read (its movements, a quote); another organisation's is
    "not found" (never "forbidden")."""
    voucher = await session.get(Voucher, voucher_id)
    if voucher is None or voucher.enterprise_id != user.org_id:
        raise errors.voucher_not_found()
    return voucher


OwnedVoucher = Annotated[Voucher, Depends(owned_voucher)]
