"""Durable timers (DESIGN.md "Time-outs"): each re-checks the order's state under its lock.

- not accepted in ``acceptance_timeout_seconds`` (7 days) -> cancelled (orders.order_cancelled);
- not signed ``signing_timeout_seconds`` (30 days) after acceptance -> orders asks contracts
  to void (orders.cancellation_requested, requested_by=timeout); the order is cancelled
  only when contracts voids it, and goes on if the contract was signed meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import lock
from common.tables import TimerRow
from orders.config import DAY, Settings
from orders.domain import Actor, Move, Step
from orders.models import Order
from orders.service import ACCEPTANCE_TIMER, SIGNING_TIMER, Why, add_step, transition

TimerFn = Callable[[AsyncSession, TimerRow], Awaitable[None]]


def _days(seconds: float) -> str:
    return f"{seconds / DAY:g}天" if seconds >= DAY else f"{seconds:g}秒"


def timer_handlers(settings: Settings) -> dict[str, TimerFn]:
    async def acceptance_timeout(session: AsyncSession, timer: TimerRow) -> None:
        order = await lock(session, Order, timer.payload["order_id"])
        if order is None:
            return
        reason = f"服务机构超过{_days(settings.acceptance_timeout_seconds)}未接单，订单已自动取消"
        why = Why(Actor.SYSTEM, "timer", reason=reason, by="timeout", code="acceptance_timeout")
        if isinstance(await transition(session, settings, order, Step.ACCEPTANCE_TIMEOUT, why), Move):
            add_step(session, order, "acceptance_timeout", Actor.SYSTEM, "timer", detail=reason)

    async def signing_timeout(session: AsyncSession, timer: TimerRow) -> None:
        order = await lock(session, Order, timer.payload["order_id"])
        if order is None:
            return
        reason = f"接单后{_days(settings.signing_timeout_seconds)}内未签订合同，申请作废合同"
        why = Why(Actor.SYSTEM, "timer", reason=reason, by="timeout")
        if isinstance(await transition(session, settings, order, Step.SIGNING_TIMEOUT, why), Move):
            add_step(session, order, "signing_timeout", Actor.SYSTEM, "timer", detail=reason)

    return {ACCEPTANCE_TIMER: acceptance_timeout, SIGNING_TIMER: signing_timeout}
