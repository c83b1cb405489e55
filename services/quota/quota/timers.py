"""Durable timer handlers: the end of a voucher's window, and of the grace after it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from common.tables import TimerRow
from common.timers import TimerHandler, schedule
from quota.config import Settings
from quota.service.vouchers import EXPIRY_TIMER, GRACE_TIMER, NEXT_EXPIRY_TIMER, expire_voucher


def timer_handlers(settings: Settings) -> dict[str, TimerHandler]:
    grace = timedelta(seconds=settings.voucher_expiry_grace_seconds)

    async def voucher_expiry(session: AsyncSession, row: TimerRow) -> None:
        """The unreserved remainder expires once the grace after the window has ended
        (re-checked under the voucher's lock; safe twice). Before that (the window's end,
        or a grace made longer since), the other expiry timer is set for that moment."""
        voucher_id = str(row.payload.get("voucher_id") or row.key)
        result = await expire_voucher(session, voucher_id, grace=grace)
        if result.not_before is not None:
            await schedule(
                session, NEXT_EXPIRY_TIMER[row.kind], row.key, result.not_before, {"voucher_id": voucher_id}
            )

    return {EXPIRY_TIMER: voucher_expiry, GRACE_TIMER: voucher_expiry}
