"""Annotated dependencies: load, lock and authorise a resource once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from common.app import SessionDep, get_settings
from common.auth import EnterpriseUser
from common.numbers import shanghai_now
from quota import errors
from quota.config import Settings
from quota.models import Campaign, Voucher
from quota.service.campaigns import campaign_for

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_campaign(session: SessionDep) -> Campaign:
    campaign = await campaign_for(session, shanghai_now().date())
    if campaign is None:
        raise errors.no_campaign()
    return campaign


CurrentCampaign = Annotated[Campaign, Depends(current_campaign)]


async def owned_voucher(voucher_id: str, user: EnterpriseUser, session: SessionDep) -> Voucher:
    """The caller's own voucher; another organisation's is "not found" (never "forbidden")."""
    voucher = await session.get(Voucher, voucher_id)
    if voucher is None or voucher.enterprise_id != user.org_id:
        raise errors.voucher_not_found()
    return voucher


OwnedVoucher = Annotated[Voucher, Depends(owned_voucher)]
