"""Durable timer handlers: the end of a voucher's window."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from common.tables import TimerRow
from quota.service.vouchers import EXPIRY_TIMER, expire_voucher


async def voucher_expiry(session: AsyncSession, row: TimerRow) -> None:
    """The unreserved remainder expires (re-checked under the voucher's lock; safe twice)."""
    await expire_voucher(session, str(row.payload.get("voucher_id") or row.key))


HANDLERS = {EXPIRY_TIMER: voucher_expiry}
