"""Providers' general-subsidy caps: administrators raise one with a recorded reason."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from quota import errors
from quota.domain import caps as rules
from quota.models import ProviderCap
from quota.service.vouchers import locked_cap


async def set_cap(
    session: AsyncSession,
    actor: Principal,
    provider_id: str,
    year: int,
    cap_fen: int,
    reason: str,
    default_cap_fen: int,
) -> ProviderCap:
    cap = await locked_cap(session, provider_id, year, default_cap_fen)
    in_use = rules.in_use(cap.reserved_fen, cap.used_fen)
    if cap_fen < in_use:
        raise errors.cap_below_usage(in_use)
    before = cap.cap_fen
    cap.cap_fen, cap.reason = cap_fen, reason
    session.add(cap)
    audit(
        session,
        actor,
        "provider_cap.set",
        "provider",
        provider_id,
        reason=reason,
        year=year,
        before_fen=before,
        cap_fen=cap_fen,
    )
    await session.flush()
    return cap
