"""服务券兑付: the claim opens when the order completes, for the contract's committed subsidy;
the provider claims with its documents; finance approves or rejects, then pays."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from common.bus import emit
from common.db import lock
from common.events import OrderCompleted, SettlementApproved, SettlementPaid, SettlementRejected
from common.files import file_problem
from common.rules import Refusal
from common.timers import utcnow
from payments import errors
from payments.domain import settlements as rules
from payments.domain.remittances import PlanState
from payments.domain.terminations import held
from payments.models import ClaimFile, PaymentPlan, Remittance, SettlementClaim
from payments.schemas.settlements import ClaimIn, SettlementOut
from payments.service import is_finance, is_member_of


async def open_claim(session: AsyncSession, plan: PaymentPlan, p: OrderCompleted) -> None:
    """At most one claim per order (UNIQUE order_id), for the committed subsidy; none when the
    contract's subsidy is 0. A plan already terminated gets its claim cancelled at once, so
    the end state does not depend on which of the two events came first."""
    if plan.subsidy_fen <= 0:
        return
    state = rules.S.CANCELLED if plan.state == PlanState.TERMINATED else rules.S.OPEN
    await session.execute(
        pg_insert(SettlementClaim)
        .values(
            order_id=plan.order_id,
            order_no=p.order_no or plan.order_no,
            contract_id=p.contract_id or plan.contract_id,
            enterprise_id=plan.enterprise_id,
            provider_id=plan.provider_id,
            enterprise_name=plan.enterprise_name,
            provider_name=plan.provider_name,
            product_name=plan.product_name,
            amount_fen=plan.subsidy_fen,
            state=state.value,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
    )


async def cancel_unpaid(session: AsyncSession, order_id: str) -> None:
    """A termination cancels the order's claim unless it was paid."""
    await session.execute(
        update(SettlementClaim)
        .where(
            col(SettlementClaim.order_id) == order_id,
            col(SettlementClaim.state).in_(sorted(rules.TRANSITIONS["cancel"][0])),
        )
        .values(state=rules.S.CANCELLED.value, updated_at=utcnow())
    )


def view(claim: SettlementClaim, principal: Principal) -> SettlementOut:
    out = SettlementOut.model_validate(claim)
    return out.model_copy(
        update={
            "actions": rules.actions(
                claim.state,
                provider=is_member_of(principal, claim.provider_id),
                finance=is_finance(principal),
            )
        }
    )


async def load_for_provider(
    session: AsyncSession, settlement_id: str, principal: Principal
) -> SettlementClaim:
    claim = await session.get(SettlementClaim, settlement_id)
    if claim is None:
        raise errors.settlement_not_found()
    if is_member_of(principal, claim.provider_id):
        return claim
    if is_member_of(principal, claim.enterprise_id):
        raise errors.not_the_provider()
    raise errors.settlement_not_found()


async def receipt_files_of_order(session: AsyncSession, order_id: str) -> set[str]:
    """Receipt files the enterprise attached to this order's confirmed transfers (granted to
    the provider): a claim may name them as its transfer receipts."""
    rows = await session.exec(
        select(Remittance.receipt_file_ids).where(
            col(Remittance.order_id) == order_id, col(Remittance.state) == "confirmed"
        )
    )
    return {file_id for ids in rows.all() for file_id in ids}


async def _locked(session: AsyncSession, settlement_id: str) -> tuple[PaymentPlan, SettlementClaim]:
    found = await session.get(SettlementClaim, settlement_id)
    if found is None:
        raise errors.settlement_not_found()
    plan = await lock(session, PaymentPlan, found.order_id)
    claim = await lock(session, SettlementClaim, settlement_id)
    if plan is None or claim is None:
        raise errors.settlement_not_found()
    return plan, claim


def _step(claim: SettlementClaim, plan: PaymentPlan, action: str) -> rules.S:
    if plan.state == PlanState.TERMINATED and claim.state != rules.S.PAID:
        raise errors.contract_terminated()
    if action == "pay" and held(plan.termination_request_id, plan.state):
        raise errors.termination_pending()
    try:
        return rules.transition(claim.state, action)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None


CLAIM_FILES = (("invoice", "invoice_file_ids"), ("receipt", "receipt_file_ids"), ("proof", "proof_file_ids"))


def distinct_files(body: ClaimIn) -> None:
    """One file is one document of a claim: never two of its kinds at once."""
    seen: set[str] = set()
    for _kind, field in CLAIM_FILES:
        for file_id in getattr(body, field):
            if file_id in seen:
                raise file_problem(field, "file_duplicated", "同一文件不能重复提交")
            seen.add(file_id)


async def back_claim_with(session: AsyncSession, claim_id: str, body: ClaimIn) -> None:
    """Each file backs this claim only (``settlement_claim_files``' primary key decides, also
    between two claims made at once); a claim made again after a rejection lets go of the
    documents it named before."""
    await session.execute(delete(ClaimFile).where(col(ClaimFile.claim_id) == claim_id))
    for kind, field in CLAIM_FILES:
        for file_id in getattr(body, field):
            taken = await session.execute(
                pg_insert(ClaimFile)
                .values(file_id=file_id, claim_id=claim_id, kind=kind)
                .on_conflict_do_nothing()
                .returning(col(ClaimFile.file_id))
            )
            if taken.first() is None:
                raise errors.file_already_claimed(field)


async def claim(
    session: AsyncSession, settlement_id: str, principal: Principal, body: ClaimIn
) -> SettlementClaim:
    """The provider's claim (its files already checked by the route)."""
    distinct_files(body)
    plan, row = await _locked(session, settlement_id)
    row.state = _step(row, plan, "claim").value
    await back_claim_with(session, row.id, body)
    row.invoice_file_ids = list(body.invoice_file_ids)
    row.receipt_file_ids = list(body.receipt_file_ids)
    row.proof_file_ids = list(body.proof_file_ids)
    row.claimed_by, row.claimed_at = principal.user_id, utcnow()
    row.reject_reason = None
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    return row


async def decide(
    session: AsyncSession,
    settlement_id: str,
    principal: Principal,
    action: str,
    *,
    reason: str | None = None,
    payout_reference: str | None = None,
) -> SettlementClaim:
    """Finance approves, rejects (reason) or pays (payout reference, only once approved ->
    ``payments.settlement_paid``); every decision audited."""
    plan, row = await _locked(session, settlement_id)
    row.state = _step(row, plan, action).value
    now = utcnow()
    row.updated_at = now
    if action == "approve":
        row.decided_by, row.decided_at = principal.user_id, now
        row.reject_reason = None
        await emit(
            session,
            SettlementApproved(
                order_id=row.order_id,
                order_no=row.order_no,
                settlement_id=row.id,
                provider_id=row.provider_id,
                amount_fen=row.amount_fen,
            ),
            aggregate_id=row.order_id,
        )
    if action == "reject":
        row.decided_by, row.decided_at = principal.user_id, now
        row.reject_reason = reason
        await emit(
            session,
            SettlementRejected(
                order_id=row.order_id,
                order_no=row.order_no,
                settlement_id=row.id,
                provider_id=row.provider_id,
                amount_fen=row.amount_fen,
                reason=reason or "",
            ),
            aggregate_id=row.order_id,
        )
    if action == "pay":
        row.payout_reference, row.paid_at = payout_reference, now
        await emit(
            session,
            SettlementPaid(
                order_id=row.order_id,
                settlement_id=row.id,
                provider_id=row.provider_id,
                amount_fen=row.amount_fen,
                payout_reference=payout_reference or "",
                order_no=row.order_no,
            ),
            aggregate_id=row.order_id,
        )
    session.add(row)
    audit(
        session,
        principal,
        f"settlement.{action}",
        "settlement",
        row.id,
        reason=reason,
        order_id=row.order_id,
        amount_fen=row.amount_fen,
        **({"payout_reference": payout_reference} if payout_reference else {}),
    )
    await session.flush()
    return row
