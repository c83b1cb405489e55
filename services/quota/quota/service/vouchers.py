"""The voucher ledger: every balance change is one conditional UPDATE plus its journal row.

Each movement is ``UPDATE vouchers SET ... WHERE id = :v AND <the balance it takes from> >= :a
RETURNING <the balances after>``: no interleaving can overdraw (a losing UPDATE changes
nothing and returns no row), and the movement row records exactly what the UPDATE left.
The saga operations take the locks in one order, so they never deadlock: the reservation
(the order: quota's aggregate), then the voucher, then the provider's cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import conflict
from common.categories import GENERAL
from common.db import lock, lock_existing
from common.events import (
    ContractSigned,
    ContractTerminated,
    EventPayload,
    OrderSubmitted,
    SettlementPaid,
    VoucherDeducted,
    VoucherReleased,
    VoucherReservationRejected,
    VoucherReserved,
    VoucherReversed,
)
from common.orgs import is_suspended
from common.pagination import PageParams, paginate
from common.timers import RetryLater, utcnow
from quota import ledger
from quota.domain import caps
from quota.domain import vouchers as rules
from quota.domain.campaigns import business_day, in_window
from quota.models import Movement, ProviderCap, Reservation, Voucher

log = structlog.get_logger(__name__)

BALANCES = ", ".join(ledger.BALANCES)

# kind -> the WHERE guard that makes it safe; what it changes is quota.ledger.MOVES, the
# arithmetic the journal is replayed with (quota's tests, voucher-invariants).
_GUARDS: dict[str, str] = {
    "issue": "TRUE",
    "reserve": "remaining_fen >= :a AND expired_at IS NULL",
    "commit": "reserved_fen >= :a",
    "release": "reserved_fen >= :a",
    "settle": "used_fen >= settled_fen + :a",
    "expire": "remaining_fen >= :a",
    "reverse": "used_fen - settled_fen >= :a",
}


def _sets(kind: str) -> str:
    """``reserved_fen = reserved_fen - :a, used_fen = used_fen + :a`` for a commit."""
    return ", ".join(f"{name} = {name} {'+' if sign > 0 else '-'} :a" for name, sign in ledger.MOVES[kind])


# One round trip per movement: the guarded UPDATE and its journal row in one statement (a
# refused UPDATE returns no row, so no movement is written either).
_SQL = {
    kind: text(
        f"WITH moved AS (UPDATE vouchers SET {_sets(kind)} WHERE id = :v AND {_GUARDS[kind]} RETURNING id, {BALANCES}) "
        f"INSERT INTO voucher_movements (voucher_id, kind, order_id, amount_fen, note, {BALANCES}) "
        f"SELECT id, '{kind}', :o, :a, :n, {BALANCES} FROM moved RETURNING {BALANCES}"
    )
    for kind in ledger.MOVES
}


class Overdraw(Exception):
    """A conditional UPDATE found less than it needed: nothing changed."""


async def move(
    session: AsyncSession,
    voucher_id: str,
    kind: str,
    amount: int,
    *,
    order_id: str | None = None,
    note: str | None = None,
) -> dict[str, int] | None:
    """Apply one movement atomically and journal it; None (nothing changed) when the guard
    refuses. A zero amount changes nothing and is not journalled."""
    if amount < 0:
        raise ValueError("a movement amount is never negative")
    if amount == 0:
        return None
    params = {"v": voucher_id, "a": amount, "o": order_id, "n": note}
    row = (await session.execute(_SQL[kind], params)).mappings().first()
    return {k: int(v) for k, v in row.items()} if row is not None else None


async def must_move(
    session: AsyncSession, voucher_id: str, kind: str, amount: int, **kw: Any
) -> dict[str, int] | None:
    after = await move(session, voucher_id, kind, amount, **kw)
    if after is None and amount > 0:
        raise Overdraw(f"{kind} of {amount} refused on voucher {voucher_id}")
    return after


async def give_back(session: AsyncSession, voucher: Voucher, kind: str, amount: int, order_id: str) -> int:
    """Release (or reverse) ``amount`` to the balance; once the window has closed, what is freed
    expires at once (DESIGN.md "Vouchers across time"). Returns the part that expired."""
    await must_move(session, voucher.id, kind, amount, order_id=order_id)
    if voucher.expired_at is not None and amount > 0:
        await must_move(
            session, voucher.id, "expire", amount, order_id=order_id, note="配额有效期已结束，释放的额度作废"
        )
        return amount
    return 0


# --- provider caps -----------------------------------------------------------------------------


async def locked_cap(session: AsyncSession, provider_id: str, year: int, default_cap_fen: int) -> ProviderCap:
    """The provider's cap row for ``year``, made at the default when absent, and locked: an
    upsert whose conflict branch touches the row takes its lock in the same statement."""
    insert = pg_insert(ProviderCap).values(provider_id=provider_id, year=year, cap_fen=default_cap_fen)
    upsert = insert.on_conflict_do_update(
        index_elements=["provider_id", "year"], set_={"provider_id": insert.excluded.provider_id}
    ).returning(ProviderCap)
    query = select(ProviderCap).from_statement(upsert).execution_options(populate_existing=True)
    cap: ProviderCap = (await session.execute(query)).scalar_one()
    return cap


_CAP_SQL = {
    "reserve": text(
        "UPDATE provider_subsidy_caps SET reserved_fen = reserved_fen + :a "
        "WHERE provider_id = :p AND year = :y AND reserved_fen + used_fen + :a <= cap_fen RETURNING reserved_fen"
    ),
    "commit": text(
        "UPDATE provider_subsidy_caps SET reserved_fen = reserved_fen - :r, used_fen = used_fen + :a "
        "WHERE provider_id = :p AND year = :y AND reserved_fen >= :r AND :a <= :r RETURNING reserved_fen"
    ),
    "release": text(
        "UPDATE provider_subsidy_caps SET reserved_fen = reserved_fen - :a "
        "WHERE provider_id = :p AND year = :y AND reserved_fen >= :a RETURNING reserved_fen"
    ),
    "reverse": text(
        "UPDATE provider_subsidy_caps SET used_fen = used_fen - :a "
        "WHERE provider_id = :p AND year = :y AND used_fen >= :a RETURNING used_fen"
    ),
}


async def cap_move(
    session: AsyncSession, kind: str, provider_id: str, year: int, amount: int, reserved: int = 0
) -> None:
    if amount == 0 and reserved == 0:
        return
    result = await session.execute(_CAP_SQL[kind], {"p": provider_id, "y": year, "a": amount, "r": reserved})
    if result.first() is None:
        raise Overdraw(f"cap {kind} of {amount} refused for provider {provider_id} in {year}")


# --- finding vouchers --------------------------------------------------------------------------


async def vouchers_of(
    session: AsyncSession, enterprise_id: str, voucher_type: str | None = None
) -> list[Voucher]:
    query = select(Voucher).where(col(Voucher.enterprise_id) == enterprise_id)
    if voucher_type:
        query = query.where(col(Voucher.voucher_type) == voucher_type)
    return list((await session.exec(query.order_by(col(Voucher.campaign_year).desc()))).all())


async def usable_voucher(
    session: AsyncSession, enterprise_id: str, voucher_type: str, day: Any
) -> Voucher | None:
    """The enterprise's voucher of this type for ``day``: the one whose window holds the day,
    else the newest (which then refuses with a reason)."""
    found = await vouchers_of(session, enterprise_id, voucher_type)
    for v in found:
        if in_window(day, v.valid_from, v.valid_to) and v.expired_at is None:
            return v
    return found[0] if found else None


async def cap_room(session: AsyncSession, provider_id: str, year: int, default_cap_fen: int) -> int:
    cap = await session.get(ProviderCap, (provider_id, year))
    if cap is None:
        return default_cap_fen
    return caps.room(cap.cap_fen, cap.reserved_fen, cap.used_fen)


async def quote(
    session: AsyncSession,
    *,
    voucher: Voucher,
    provider_id: str,
    price_fen: int,
    max_subsidy_fen: int,
    default_cap_fen: int,
) -> int:
    room = (
        await cap_room(session, provider_id, voucher.campaign_year, default_cap_fen)
        if voucher.voucher_type == GENERAL
        else None
    )
    return rules.subsidy(price_fen, voucher.ratio_bp, max_subsidy_fen, voucher.remaining_fen, room)


# --- the saga's steps --------------------------------------------------------------------------


async def locked_reservation(session: AsyncSession, order_id: str) -> Reservation | None:
    return await lock(session, Reservation, order_id)


async def reserve_for_order(
    session: AsyncSession, p: OrderSubmitted, at: datetime, *, default_cap_fen: int
) -> EventPayload | None:
    """Step 2: reserve min(ratio × price, product max, remaining, cap room), or refuse with a
    reason code; the decision is :func:`quota.domain.vouchers.reserve`'s, this loads, locks and applies
    it. One reservation row per order: a repeat changes nothing (returns None)."""
    # The row this transaction inserts is its own until it commits; a concurrent delivery of
    # the same order waits on the unique index, then inserts nothing and changes nothing.
    insert = (
        pg_insert(Reservation)
        .values(
            order_id=p.order_id,
            enterprise_id=p.enterprise_id,
            provider_id=p.provider_id,
            voucher_type=p.voucher_type,
            state="deciding",
        )
        .on_conflict_do_nothing()
        .returning(Reservation)
    )
    query = select(Reservation).from_statement(insert).execution_options(populate_existing=True)
    res: Reservation | None = (await session.execute(query)).scalar_one_or_none()
    if res is None:
        return None  # already decided for this order
    if not p.use_voucher:
        res.state = "none"
        session.add(res)
        return None

    order = rules.OrderFacts(
        enterprise_id=p.enterprise_id,
        voucher_id=p.voucher_id,
        category=p.category,
        price_fen=p.price_fen,
        max_subsidy_fen=p.max_subsidy_fen,
    )
    # Load and lock what the rules read, in the saga's lock order (the reservation, the
    # voucher, the provider's cap), and no more than the rules reach: a suspended enterprise's
    # voucher is not locked, nor the cap of an order refused before it.
    suspended = await is_suspended(session, p.enterprise_id)
    voucher = None if suspended else await _locked_voucher_for(session, order, at)
    facts = _facts(voucher) if voucher is not None else None
    room: int | None = None
    year = rules.cap_year(facts) if facts is not None else None
    if year is not None and rules.refused_before_cap(order, facts, suspended=suspended, now=at) is None:
        cap = await locked_cap(session, p.provider_id, year, default_cap_fen)
        room = caps.room(cap.cap_fen, cap.reserved_fen, cap.used_fen)
    decision = rules.reserve(order, facts, suspended=suspended, now=at, cap_room_fen=room)

    if isinstance(decision, rules.Rejected):
        res.state, res.voucher_id = "rejected", decision.voucher_id
        res.reason_code, res.reason = decision.code, decision.reason
        session.add(res)
        return VoucherReservationRejected(
            order_id=p.order_id,
            voucher_id=decision.voucher_id,
            reason_code=decision.code,
            reason=decision.reason,
        )
    assert voucher is not None
    amount = decision.amount_fen
    if decision.cap_year is not None:
        await cap_move(session, "reserve", p.provider_id, decision.cap_year, amount)
    after = await must_move(session, voucher.id, "reserve", amount, order_id=p.order_id)
    res.state, res.voucher_id, res.amount_fen = "reserved", voucher.id, amount
    res.ratio_bp, res.cap_year = decision.ratio_bp, decision.cap_year
    session.add(res)
    remaining = after["remaining_fen"] if after else voucher.remaining_fen
    return VoucherReserved(
        order_id=p.order_id,
        voucher_id=voucher.id,
        voucher_no=voucher.voucher_no,
        amount_fen=amount,
        ratio_bp=decision.ratio_bp,
        remaining_fen=remaining,
    )


async def _locked_voucher_for(session: AsyncSession, order: rules.OrderFacts, at: datetime) -> Voucher | None:
    """The voucher the order names, else the enterprise's usable one of the type that pays
    for its category (none is looked up for a category no type pays for), locked."""
    if order.voucher_id:
        return await lock(session, Voucher, order.voucher_id)
    expected = rules.voucher_type_of(order.category)
    if expected is None:
        return None
    found = await usable_voucher(session, order.enterprise_id, expected, business_day(at))
    return await lock(session, Voucher, found.id) if found is not None else None


def _facts(v: Voucher) -> rules.VoucherFacts:
    return rules.VoucherFacts(
        id=v.id,
        enterprise_id=v.enterprise_id,
        voucher_type=v.voucher_type,
        campaign_year=v.campaign_year,
        ratio_bp=v.ratio_bp,
        remaining_fen=v.remaining_fen,
        valid_from=v.valid_from,
        valid_to=v.valid_to,
        expired=v.expired_at is not None,
    )


async def _held(session: AsyncSession, order_id: str, *, wait_for_submission: bool) -> Reservation | None:
    res = await locked_reservation(session, order_id)
    if res is None and wait_for_submission:
        raise RetryLater(f"order {order_id}: its submission has not reached quota yet")
    return res


async def release_for_order(
    session: AsyncSession, order_id: str, reason: str, *, wait_for_submission: bool
) -> VoucherReleased | None:
    """Steps 6 and 7 (cancelled or voided): give the reservation back if it is still held.
    A second release changes nothing and publishes nothing."""
    res = await _held(session, order_id, wait_for_submission=wait_for_submission)
    if res is None or res.state != "reserved" or res.voucher_id is None:
        if res is not None and res.state in ("committed", "settled"):
            log.warning("release_of_committed_ignored", order_id=order_id, state=res.state)
        return None
    voucher = await lock_existing(session, Voucher, res.voucher_id)
    if res.cap_year is not None:
        await cap_move(session, "release", res.provider_id, res.cap_year, res.amount_fen)
    expired = await give_back(session, voucher, "release", res.amount_fen, order_id)
    res.state, res.reason = "released", reason
    session.add(res)
    return VoucherReleased(
        order_id=order_id,
        voucher_id=voucher.id,
        amount_fen=res.amount_fen,
        expired_fen=expired,
        reason=reason,
    )


async def commit_for_order(session: AsyncSession, p: ContractSigned) -> VoucherDeducted | None:
    """Step 6 (signed): commit exactly the contract's subsidy (<= reserved), release the rest."""
    res = await _held(session, p.order_id, wait_for_submission=True)
    assert res is not None
    if res.state == "deciding":
        raise RetryLater(f"order {p.order_id}: its reservation is being decided")
    if res.state != "reserved" or res.voucher_id is None:
        if p.subsidy_fen > 0 and res.state in ("none", "rejected", "released"):
            conflict(
                session,
                "signed_subsidy_without_reservation",
                "order",
                p.order_id,
                reason="合同约定了服务券抵扣，但该订单没有服务券预留：不予抵扣，请核实",
                reservation_state=res.state,
                subsidy_fen=p.subsidy_fen,
            )
        return None
    committed = p.subsidy_fen
    if committed > res.amount_fen:
        conflict(
            session,
            "contract_subsidy_above_reservation",
            "order",
            p.order_id,
            reason="合同的服务券抵扣高于预留金额：只抵扣预留金额，请核实",
            subsidy_fen=p.subsidy_fen,
            reserved_fen=res.amount_fen,
        )
        committed = res.amount_fen
    committed = max(committed, 0)
    rest = res.amount_fen - committed
    voucher = await lock_existing(session, Voucher, res.voucher_id)
    if res.cap_year is not None:
        await cap_move(session, "commit", res.provider_id, res.cap_year, committed, reserved=res.amount_fen)
    await must_move(
        session, voucher.id, "commit", committed, order_id=p.order_id, note=f"合同 {p.contract_id}"
    )
    await give_back(session, voucher, "release", rest, p.order_id)
    res.state, res.committed_fen = "committed", committed
    session.add(res)
    return VoucherDeducted(
        order_id=p.order_id, voucher_id=voucher.id, amount_fen=committed, released_fen=rest
    )


async def settle_for_order(session: AsyncSession, p: SettlementPaid) -> None:
    """Step 12: the committed subsidy is settled (兑付已支付)."""
    res = await _held(session, p.order_id, wait_for_submission=True)
    assert res is not None
    if res.state in ("deciding", "reserved"):
        raise RetryLater(f"order {p.order_id}: the signing has not reached quota yet")
    if res.state != "committed" or res.voucher_id is None:
        if res.state != "settled":  # paid out for a deduction given back (or never made)
            conflict(
                session,
                "settlement_of_reversed_deduction"
                if res.state == "reversed"
                else "settlement_without_deduction",
                "order",
                p.order_id,
                reason="服务券兑付已支付，但该订单的服务券抵扣已撤销或不存在：请核实后线下处理",
                reservation_state=res.state,
                amount_fen=p.amount_fen,
                settlement_id=p.settlement_id,
                payout_reference=p.payout_reference,
            )
        return
    if p.amount_fen != res.committed_fen:
        conflict(
            session,
            "settlement_amount_differs",
            "order",
            p.order_id,
            reason="服务券兑付金额与抵扣金额不一致，已按抵扣金额结算：请核实",
            paid_fen=p.amount_fen,
            committed_fen=res.committed_fen,
        )
    await lock(session, Voucher, res.voucher_id)
    await must_move(
        session, res.voucher_id, "settle", res.committed_fen, order_id=p.order_id, note=p.payout_reference
    )
    res.state = "settled"
    session.add(res)


async def reverse_for_order(session: AsyncSession, p: ContractTerminated) -> VoucherReversed | None:
    """Termination: give back an unsettled deduction; a settled one is never clawed back."""
    res = await _held(session, p.order_id, wait_for_submission=True)
    assert res is not None
    if res.state in ("deciding", "reserved"):
        raise RetryLater(f"order {p.order_id}: the signing has not reached quota yet")
    if res.voucher_id is None or res.state in ("none", "rejected", "released", "reversed"):
        return None
    if res.state == "settled":
        conflict(
            session,
            "termination_of_settled_deduction",
            "order",
            p.order_id,
            reason="合同终止时服务券补贴已兑付：不予冲回，请核实后线下处理",
            amount_fen=res.committed_fen,
        )
        return VoucherReversed(
            order_id=p.order_id,
            voucher_id=res.voucher_id,
            amount_fen=0,
            refused=True,
            reason="服务券补贴已兑付，不予冲回",
        )
    voucher = await lock_existing(session, Voucher, res.voucher_id)
    if res.cap_year is not None:
        await cap_move(session, "reverse", res.provider_id, res.cap_year, res.committed_fen)
    expired = await give_back(session, voucher, "reverse", res.committed_fen, p.order_id)
    res.state, res.reason = "reversed", p.reason
    session.add(res)
    return VoucherReversed(
        order_id=p.order_id,
        voucher_id=voucher.id,
        amount_fen=res.committed_fen,
        expired_fen=expired,
        reason=p.reason,
    )


# --- expiry ------------------------------------------------------------------------------------

# The window's end, scheduled when the voucher is issued, and the end of the grace after it.
# A timer row is deleted when its handler succeeds, so a handler that must come back later
# schedules the other kind (two rows, never the one being deleted).
EXPIRY_TIMER = "voucher_expiry"
GRACE_TIMER = "voucher_expiry_grace"
NEXT_EXPIRY_TIMER = {EXPIRY_TIMER: GRACE_TIMER, GRACE_TIMER: EXPIRY_TIMER}


@dataclass(frozen=True)
class Expiry:
    expired_fen: int = 0  # what expired now
    not_before: datetime | None = None  # the grace has not ended: nothing changed, come back then


async def expire_voucher(
    session: AsyncSession, voucher_id: str, *, grace: timedelta, now: datetime | None = None
) -> Expiry:
    """Once the window and the grace after it have ended, the unreserved remainder expires;
    reservations stay valid. During the grace nothing changes: an order submitted inside the
    window that reaches quota late still reserves (DESIGN.md "Vouchers across time"). Safe to
    run twice (the second run finds nothing left)."""
    now = now or utcnow()
    voucher = await lock(session, Voucher, voucher_id)
    if voucher is None:
        return Expiry()
    due = rules.expiry_moment(voucher.valid_to, grace)
    if now < due:
        return Expiry(not_before=due)
    if voucher.expired_at is None:
        voucher.expired_at = now
        session.add(voucher)
        await session.flush()
    amount = voucher.remaining_fen
    await move(session, voucher.id, "expire", amount, note="配额有效期结束")
    return Expiry(expired_fen=amount)


async def movements(session: AsyncSession, voucher_id: str, paging: PageParams) -> tuple[int, list[Movement]]:
    """(total, the page's rows) of a voucher's ledger, oldest first."""
    query = select(Movement).where(col(Movement.voucher_id) == voucher_id).order_by(col(Movement.id))
    return await paginate(session, query, paging)
