"""The contracts: drafting, review, signing, voiding and termination, on a session: lock,
apply the domain, audit, add outbox events. Nothing here commits (the route or the consumer
commits once). The seals a signature uses, and the verification it spends, are ``seals``'.

Locks, always in this order: the order's facts row (``contract_order_facts``), then the
contract row. Routes and handlers that decide whether a contract is signed, void or
terminated take both, so a second signature racing a cancellation is decided by the
database: whoever comes second sees the state the first committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common import bus
from common.audit import SYSTEM, audit
from common.auth import Principal
from common.db import lock_existing
from common.errors import Problem
from common.events import (
    CancellationRefused,
    CancellationRequested,
    ContractAgreed,
    ContractPartySigned,
    ContractReturned,
    ContractSigned,
    ContractSubmitted,
    ContractTerminated,
    ContractVoided,
    OrderAccepted,
    TerminationRequested,
    TerminationWithdrawn,
)
from common.money import amount_in_words
from common.orgs import require_active
from common.rules import Refusal
from common.timers import utcnow
from contracts import document, errors, signing
from contracts.config import Settings
from contracts.context import ContractsContext
from contracts.domain import contracts as domain
from contracts.domain.contracts import Action, Party, State
from contracts.domain.seals import SIGN_PURPOSE
from contracts.models import (
    Contract,
    ContractDocument,
    ContractVersion,
    OrderFacts,
    Seal,
    Signature,
)
from contracts.schemas.contracts import ContractOut, ContractSignatureOut, ContractSignatures
from contracts.service import seals

# --- reading -------------------------------------------------------------------------------------


def _party(contract: Contract, principal: Principal) -> Party | None:
    return domain.party_of(
        principal.org_id, enterprise_id=contract.enterprise_id, provider_id=contract.provider_id
    )


async def signatures_of(session: AsyncSession, contract_id: str) -> list[Signature]:
    return list(
        (await session.exec(select(Signature).where(col(Signature.contract_id) == contract_id))).all()
    )


async def contract_out(session: AsyncSession, contract: Contract, principal: Principal | None) -> ContractOut:
    sigs = await signatures_of(session, contract.id)
    by_party = {Party(s.party): ContractSignatureOut.model_validate(s) for s in sigs}
    party = _party(contract, principal) if principal is not None else None
    out = ContractOut.model_validate(contract)
    return out.model_copy(
        update={
            "state_label": domain.STATE_LABELS[State(contract.state)],
            "total_upper": amount_in_words(contract.total_fen),
            "payable_upper": amount_in_words(contract.payable_fen),
            "signatures": ContractSignatures(
                enterprise=by_party.get(Party.ENTERPRISE), provider=by_party.get(Party.PROVIDER)
            ),
            "actions": domain.actions_for(contract.state, party, set(by_party), terms_set=contract.terms_set),
        }
    )


# --- locks ---------------------------------------------------------------------------------------


async def lock_facts(session: AsyncSession, order_id: str) -> OrderFacts:
    await session.execute(pg_insert(OrderFacts).values(order_id=order_id).on_conflict_do_nothing())
    facts = await lock_existing(session, OrderFacts, order_id)
    return facts


async def lock_contract(session: AsyncSession, contract_id: str) -> tuple[OrderFacts, Contract]:
    """The order's facts, then the contract, both FOR UPDATE (the one lock order)."""
    found = await session.get(Contract, contract_id)
    if found is None:
        raise errors.contract_not_found()
    facts = await lock_facts(session, found.order_id)
    contract = await lock_existing(session, Contract, contract_id)
    return facts, contract


async def contract_of_order(
    session: AsyncSession, order_id: str, *, for_update: bool = False
) -> Contract | None:
    stmt = select(Contract).where(col(Contract.order_id) == order_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.exec(stmt)).first()


def _move(contract: Contract, action: Action) -> State:
    try:
        return domain.transition(contract.state, action)
    except Refusal as refusal:
        raise _refused(State(contract.state), action, refusal) from None


def _refused(state: State, action: Action, refusal: Refusal) -> Problem:
    if action is Action.EDIT and state in (State.PENDING_REVIEW, State.AGREED, State.SIGNED):
        return errors.contract_immutable(state)
    return errors.from_refusal(refusal)


def _require_party(contract: Contract, principal: Principal, party: Party, action: Action) -> None:
    if _party(contract, principal) is not party:
        raise errors.wrong_party(action)


# --- the saga's steps ----------------------------------------------------------------------------


async def create_draft(session: AsyncSession, p: OrderAccepted) -> Contract | None:
    """A draft for an accepted order (once; none when the order is known cancelled)."""
    facts = await lock_facts(session, p.order_id)
    if facts.cancelled or facts.void_requested:
        return None
    existing = await contract_of_order(session, p.order_id)
    if existing is not None:
        return existing
    amounts = domain.compute_amounts(
        p.price_fen,
        0,
        reserved_fen=p.subsidy_reserved_fen,
        ratio_bp=p.ratio_bp,
        max_subsidy_fen=p.max_subsidy_fen,
    )
    contract = Contract(
        order_id=p.order_id,
        order_no=p.order_no,
        enterprise_id=p.enterprise_id,
        enterprise_name=p.enterprise_name,
        provider_id=p.provider_id,
        provider_name=p.provider_name,
        product_id=p.product_id,
        product_name=p.product_name,
        category=p.category,
        price_fen=p.price_fen,
        reserved_fen=p.subsidy_reserved_fen,
        ratio_bp=p.ratio_bp,
        max_subsidy_fen=p.max_subsidy_fen,
        voucher_id=p.voucher_id,
        state=State.DRAFTING.value,
        total_fen=amounts.total_fen,
        subsidy_fen=amounts.subsidy_fen,
        payable_fen=amounts.payable_fen,
        deposit_fen=0,
        balance_fen=amounts.balance_fen,
    )
    session.add(contract)
    await session.flush()
    return contract


async def _void(session: AsyncSession, contract: Contract, reason: str) -> None:
    contract.state = _move(contract, Action.VOID).value
    contract.voided_at = utcnow()
    contract.void_reason = reason
    session.add(contract)


async def on_cancellation_requested(session: AsyncSession, p: CancellationRequested) -> domain.CancelOutcome:
    """Void an unsigned contract; ask payments to terminate a signed one when the enterprise
    asked and contracts knows of no payment; else refuse, and say so
    (``contracts.cancellation_refused``), so that orders does not wait for an answer forever."""
    facts = await lock_facts(session, p.order_id)
    contract = await contract_of_order(session, p.order_id, for_update=True)
    answer = domain.on_cancellation_request(
        contract.state if contract else None,
        terminate_if_signed=p.terminate_if_signed,
        paid=facts.paid_fen > 0 or facts.settlement_paid,
    )
    if answer.outcome is domain.CancelOutcome.VOID:
        facts.void_requested = True
        facts.cancel_reason = p.reason
        session.add(facts)
        if contract is not None:
            await _void(session, contract, p.reason)
        await bus.emit(
            session,
            ContractVoided(
                order_id=p.order_id, contract_id=contract.id if contract else None, reason=p.reason
            ),
            aggregate_id=p.order_id,
        )
    elif answer.outcome is domain.CancelOutcome.TERMINATE:
        assert contract is not None
        await _request_termination(session, facts, contract, reason=p.reason, by="enterprise", user=None)
    elif answer.outcome is domain.CancelOutcome.REFUSE:
        await bus.emit(
            session,
            CancellationRefused(
                order_id=p.order_id,
                contract_id=contract.id if contract else None,
                reason_code=answer.code,
                reason=answer.reason,
                requested_by=p.requested_by,
            ),
            aggregate_id=p.order_id,
        )
    return answer.outcome


async def on_order_cancelled(session: AsyncSession, order_id: str, reason: str) -> None:
    facts = await lock_facts(session, order_id)
    facts.cancelled = True
    facts.cancel_reason = facts.cancel_reason or reason
    session.add(facts)
    contract = await contract_of_order(session, order_id, for_update=True)
    if contract is not None and State(contract.state) in domain.UNSIGNED:
        # Defensive: after acceptance orders cancels only once contracts voided; a contract
        # still open here can never be signed, and quota releases on the cancellation itself.
        await _void(session, contract, reason)


async def on_payment_received(session: AsyncSession, order_id: str, paid_fen: int) -> None:
    facts = await lock_facts(session, order_id)
    facts.paid_fen = max(facts.paid_fen, paid_fen)
    session.add(facts)


async def on_settlement_paid(session: AsyncSession, order_id: str) -> None:
    facts = await lock_facts(session, order_id)
    facts.settlement_paid = True
    session.add(facts)


# --- the provider's and the enterprise's steps ---------------------------------------------------


async def edit(
    session: AsyncSession, ctx: ContractsContext, contract_id: str, principal: Principal, body: Any
) -> Contract:
    _facts, contract = await lock_contract(session, contract_id)
    _require_party(contract, principal, Party.PROVIDER, Action.EDIT)
    await require_active(session, principal)
    _move(contract, Action.EDIT)
    try:
        unshown = await asyncio.to_thread(
            document.unprintable, body.terms, font=ctx.settings.pdf_font_path, multiline=True
        )
    except document.FontMissing as exc:
        raise errors.document_unavailable() from exc
    if unshown:
        raise errors.text_not_printable("合同文本", [("terms", "合同条款", unshown)])
    try:
        amounts = domain.compute_amounts(
            body.total_fen,
            body.deposit_fen,
            reserved_fen=contract.reserved_fen,
            ratio_bp=contract.ratio_bp,
            max_subsidy_fen=contract.max_subsidy_fen,
        )
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    contract.total_fen = amounts.total_fen
    contract.subsidy_fen = amounts.subsidy_fen
    contract.payable_fen = amounts.payable_fen
    contract.deposit_fen = amounts.deposit_fen
    contract.balance_fen = amounts.balance_fen
    contract.terms = body.terms
    contract.terms_set = True
    session.add(contract)
    return contract


async def submit(session: AsyncSession, contract_id: str, principal: Principal) -> Contract:
    _facts, contract = await lock_contract(session, contract_id)
    _require_party(contract, principal, Party.PROVIDER, Action.SUBMIT)
    await require_active(session, principal)
    to = _move(contract, Action.SUBMIT)
    if not contract.terms_set:
        raise errors.contract_incomplete()
    contract.version += 1
    contract.state = to.value
    contract.submitted_at = utcnow()
    contract.return_reason = None
    session.add(contract)
    session.add(
        ContractVersion(
            contract_id=contract.id,
            version=contract.version,
            total_fen=contract.total_fen,
            subsidy_fen=contract.subsidy_fen,
            payable_fen=contract.payable_fen,
            deposit_fen=contract.deposit_fen,
            balance_fen=contract.balance_fen,
            terms=contract.terms,
            submitted_by=principal.user_id,
            submitted_at=contract.submitted_at,
        )
    )
    await bus.emit(
        session,
        ContractSubmitted(
            order_id=contract.order_id,
            order_no=contract.order_no,
            contract_id=contract.id,
            contract_version=contract.version,
            enterprise_id=contract.enterprise_id,
            provider_id=contract.provider_id,
            provider_name=contract.provider_name,
            product_name=contract.product_name,
            total_fen=contract.total_fen,
            subsidy_fen=contract.subsidy_fen,
            payable_fen=contract.payable_fen,
        ),
        aggregate_id=contract.order_id,
    )
    return contract


async def _current_version(session: AsyncSession, contract: Contract) -> ContractVersion:
    row = (
        await session.exec(
            select(ContractVersion).where(
                col(ContractVersion.contract_id) == contract.id,
                col(ContractVersion.version) == contract.version,
            )
        )
    ).first()
    assert row is not None, "a submitted contract has its version"
    return row


async def return_(session: AsyncSession, contract_id: str, principal: Principal, reason: str) -> Contract:
    _facts, contract = await lock_contract(session, contract_id)
    _require_party(contract, principal, Party.ENTERPRISE, Action.RETURN)
    await require_active(session, principal)
    contract.state = _move(contract, Action.RETURN).value
    contract.return_reason = reason
    version = await _current_version(session, contract)
    version.return_reason, version.returned_at = reason, utcnow()
    session.add_all([contract, version])
    await bus.emit(
        session,
        ContractReturned(
            order_id=contract.order_id,
            order_no=contract.order_no,
            contract_id=contract.id,
            contract_version=contract.version,
            enterprise_id=contract.enterprise_id,
            enterprise_name=contract.enterprise_name,
            provider_id=contract.provider_id,
            product_name=contract.product_name,
            reason=reason,
        ),
        aggregate_id=contract.order_id,
    )
    return contract


def contract_text(contract: Contract, settings: Settings) -> document.ContractText:
    return document.ContractText(
        contract_id=contract.id,
        order_no=contract.order_no,
        version=contract.version,
        enterprise_name=contract.enterprise_name,
        provider_name=contract.provider_name,
        product_name=contract.product_name,
        category=contract.category,
        total_fen=contract.total_fen,
        subsidy_fen=contract.subsidy_fen,
        payable_fen=contract.payable_fen,
        deposit_fen=contract.deposit_fen,
        balance_fen=contract.balance_fen,
        terms=contract.terms,
        agreed_at=contract.agreed_at,
        platform_name=settings.platform_name,
    )


def _agreed_document(text: document.ContractText, font: str | None) -> bytes:
    if found := document.unprintable_in_contract(text, font=font):
        raise errors.text_not_printable("合同文本", found)
    rendered = document.render_contract(text, font=font)
    return signing.add_signature_fields(rendered.pdf, rendered.fields)


async def agree(
    session: AsyncSession, ctx: ContractsContext, contract_id: str, principal: Principal
) -> Contract:
    """Agreed: immutable from now; the document both parties will sign is made once, here."""
    _facts, contract = await lock_contract(session, contract_id)
    _require_party(contract, principal, Party.ENTERPRISE, Action.AGREE)
    await require_active(session, principal)
    contract.state = _move(contract, Action.AGREE).value
    contract.agreed_at = utcnow()
    version = await _current_version(session, contract)
    version.agreed_at = contract.agreed_at
    try:
        pdf = await asyncio.to_thread(
            _agreed_document, contract_text(contract, ctx.settings), ctx.settings.pdf_font_path
        )
    except document.FontMissing as exc:
        raise errors.document_unavailable() from exc
    digest = hashlib.sha256(pdf).hexdigest()
    contract.document_sha256 = digest
    session.add_all([contract, version, ContractDocument(contract_id=contract.id, pdf=pdf, sha256=digest)])
    await bus.emit(
        session,
        ContractAgreed(
            order_id=contract.order_id,
            order_no=contract.order_no,
            contract_id=contract.id,
            contract_version=contract.version,
            enterprise_id=contract.enterprise_id,
            provider_id=contract.provider_id,
            product_name=contract.product_name,
            total_fen=contract.total_fen,
        ),
        aggregate_id=contract.order_id,
    )
    return contract


# --- signing ---------------------------------------------------------------------------------------


async def sign(
    session: AsyncSession,
    ctx: ContractsContext,
    verifier: Any,
    contract_id: str,
    principal: Principal,
    token: str,
) -> Contract:
    facts, contract = await lock_contract(session, contract_id)
    party = _party(contract, principal)
    if party is None:
        raise errors.contract_not_found()
    await require_active(session, principal)
    if facts.cancelled or facts.void_requested:
        raise errors.contract_cancelled()
    _move(contract, Action.SIGN)
    # The token first: a spent one is refused whatever else holds (single use). Every refusal
    # below rolls the spending back with the rest of the transaction.
    jti = await seals.spend_verification(
        session, verifier, principal, token, purpose=SIGN_PURPOSE, object_id=contract.id
    )
    signed = await signatures_of(session, contract.id)
    if any(s.party == party.value for s in signed):
        raise errors.already_signed()
    seal = await session.get(Seal, principal.org_id)
    if seal is None:
        raise errors.seal_required()
    doc = await lock_existing(session, ContractDocument, contract.id)
    ca = ctx.require_ca()
    before = doc.pdf
    signed_pdf = await asyncio.to_thread(
        signing.sign_pdf,
        before,
        field_name=party.value,
        key_pem=seals.private_key(ctx, seal),
        cert_pem=seal.certificate_pem,
        ca_cert_pem=ca.cert_pem,
        seal_png=seal.image_png,
        signer_name=seal.org_name,
    )
    doc.pdf = signed_pdf
    doc.sha256 = hashlib.sha256(signed_pdf).hexdigest()
    contract.document_sha256 = doc.sha256
    session.add(
        Signature(
            contract_id=contract.id,
            party=party.value,
            org_id=str(principal.org_id),
            user_id=principal.user_id,
            signed_sha256=hashlib.sha256(before).hexdigest(),
            verification_jti=jti,
        )
    )
    await bus.emit(
        session,
        ContractPartySigned(order_id=contract.order_id, contract_id=contract.id, party=party.value),
        aggregate_id=contract.order_id,
    )
    state = domain.after_signature({Party(s.party) for s in signed} | {party})
    if state is State.SIGNED:
        contract.state = state.value
        contract.signed_at = utcnow()
        await bus.emit(
            session,
            ContractSigned(
                order_id=contract.order_id,
                contract_id=contract.id,
                enterprise_id=contract.enterprise_id,
                provider_id=contract.provider_id,
                total_fen=contract.total_fen,
                subsidy_fen=contract.subsidy_fen,
                payable_fen=contract.payable_fen,
                deposit_fen=contract.deposit_fen,
                balance_fen=contract.balance_fen,
                document_sha256=doc.sha256,
                order_no=contract.order_no,
                product_name=contract.product_name,
                enterprise_name=contract.enterprise_name,
                provider_name=contract.provider_name,
            ),
            aggregate_id=contract.order_id,
        )
    session.add_all([doc, contract])
    await session.flush()
    return contract


# --- termination ---------------------------------------------------------------------------------
# Two things must never happen together with a termination, each decided in its own database:
# a payout (payments) and the service's completion (orders). Contracts freezes the contract
# (``terminating``) and asks both (DESIGN.md "Termination"); it terminates once both agreed,
# and withdraws the request as soon as either refuses, so the other lets go of its hold.


async def _request_termination(
    session: AsyncSession,
    facts: OrderFacts,
    contract: Contract,
    *,
    reason: str,
    by: str,
    user: str | None,
) -> None:
    if facts.settlement_paid:  # known here already: no need to ask
        raise errors.settlement_paid()
    contract.state = _move(contract, Action.REQUEST_TERMINATION).value
    contract.termination_request_id = str(uuid.uuid4())
    contract.termination_requested_at = utcnow()
    contract.termination_requested_by = by
    contract.termination_request_reason = reason
    contract.termination_payments_agreed = contract.termination_orders_agreed = False
    contract.termination_refused_at = None
    contract.termination_refused_reason = None
    session.add(contract)
    await bus.emit(
        session,
        TerminationRequested(
            order_id=contract.order_id,
            contract_id=contract.id,
            request_id=contract.termination_request_id,
            reason=reason,
            requested_by=by,
            requested_by_user=user,
        ),
        aggregate_id=contract.order_id,
    )


async def terminate(session: AsyncSession, contract_id: str, principal: Principal, reason: str) -> Contract:
    """Staff ask to terminate a signed contract: frozen until payments and orders answer."""
    facts, contract = await lock_contract(session, contract_id)
    await _request_termination(
        session, facts, contract, reason=reason, by="administrator", user=principal.user_id
    )
    audit(
        session,
        principal,
        "contract.terminate",
        "contract",
        contract.id,
        reason=reason,
        order_id=contract.order_id,
        request_id=contract.termination_request_id,
    )
    return contract


async def _answered(session: AsyncSession, order_id: str, request_id: str) -> Contract | None:
    """The contract waiting for this answer (None: an answer to an older request, or repeated)."""
    await lock_facts(session, order_id)
    contract = await contract_of_order(session, order_id, for_update=True)
    if contract is None or State(contract.state) is not State.TERMINATING:
        return None
    if contract.termination_request_id != request_id:
        return None
    return contract


async def on_termination_agreed(session: AsyncSession, order_id: str, request_id: str, *, by: str) -> None:
    """``by`` payments (it holds every payout) or orders (it froze the order): once both
    agreed, the contract is terminated."""
    contract = await _answered(session, order_id, request_id)
    if contract is None:
        return
    if by == "payments":
        contract.termination_payments_agreed = True
    else:
        contract.termination_orders_agreed = True
    session.add(contract)
    if not (contract.termination_payments_agreed and contract.termination_orders_agreed):
        return
    by_whom = contract.termination_requested_by or "administrator"
    reason = contract.termination_request_reason or ""
    contract.state = _move(contract, Action.TERMINATE).value
    contract.terminated_at = utcnow()
    contract.terminate_reason = reason
    contract.terminated_by = by_whom
    await bus.emit(
        session,
        ContractTerminated(
            order_id=contract.order_id, contract_id=contract.id, reason=reason, terminated_by=by_whom
        ),
        aggregate_id=contract.order_id,
    )


async def on_termination_refused(
    session: AsyncSession, order_id: str, request_id: str, *, code: str, reason: str, by: str
) -> None:
    """Back to ``signed``, the reason shown to staff; the request withdrawn, so that the one
    that agreed lets go (and, for an enterprise's cancel, orders stops waiting)."""
    contract = await _answered(session, order_id, request_id)
    if contract is None:
        return
    contract.state = _move(contract, Action.RESUME).value
    contract.termination_refused_at = utcnow()
    contract.termination_refused_reason = reason
    session.add(contract)
    audit(
        session,
        SYSTEM,
        "contract.termination_refused",
        "contract",
        contract.id,
        reason=reason,
        order_id=contract.order_id,
        code=code,
        refused_by=by,
        requested_by=contract.termination_requested_by,
    )
    await bus.emit(
        session,
        TerminationWithdrawn(
            order_id=contract.order_id,
            contract_id=contract.id,
            request_id=request_id,
            reason_code=code,
            reason=reason,
        ),
        aggregate_id=contract.order_id,
    )
    if contract.termination_requested_by == "enterprise":
        await bus.emit(
            session,
            CancellationRefused(
                order_id=contract.order_id,
                contract_id=contract.id,
                reason_code=code,
                reason=reason,
                requested_by="enterprise",
            ),
            aggregate_id=contract.order_id,
        )
