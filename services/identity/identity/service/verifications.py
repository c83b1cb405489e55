"""人脸认证 with a vendor: start a check bound to a person, ask the vendor how it went, decide
the verification once, and give the token of a passed one. Never commits."""

from __future__ import annotations

import structlog
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from common.crypto import DecryptionError
from common.rules import Refusal
from common.timers import utcnow
from identity import errors, tokens
from identity.adapters.face import FaceSubject
from identity.context import IdentityContext
from identity.domain import organizations as org_domain
from identity.domain import verifications as domain
from identity.models import IdentityVerification, Organization, User
from identity.schemas.verifications import VerificationOut

log = structlog.get_logger(__name__)


async def face_subject(
    session: AsyncSession, ctx: IdentityContext, user: User, org: Organization | None = None
) -> FaceSubject | None:
    """Whose face a verification of ``user`` must show: the owner's is the legal
    representative's (the name and ID number certified for the organisation), an agent's their
    own (given when they were designated). ``None`` when identity does not hold them."""
    try:
        if user.role == "owner":
            if org is None and user.organization_id:
                org = await session.get(Organization, user.organization_id)
            if org is None or not org.legal_rep_name or not org.legal_rep_id_enc:
                return None
            number = ctx.cipher.decrypt(org.legal_rep_id_enc, context=org_domain.LEGAL_REP_ID_CONTEXT)
            return FaceSubject(name=org.legal_rep_name, id_number=number)
        if not user.id_number_enc:
            return None
        number = ctx.cipher.decrypt(user.id_number_enc, context=org_domain.AGENT_ID_CONTEXT)
        return FaceSubject(name=user.name, id_number=number)
    except DecryptionError:
        log.error("face_subject_undecryptable", user_id=user.id)
        return None


async def start(
    session: AsyncSession,
    ctx: IdentityContext,
    user: User,
    org: Organization,
    purpose: str,
    object_id: str | None,
) -> tuple[IdentityVerification, str | None]:
    """A pending verification opened with the vendor, for a member of a certified
    organisation that is not suspended (a seal: its owner only); the page the person opens
    (or None)."""
    try:
        domain.check_object(purpose, object_id)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    if purpose == "seal" and user.role != "owner":
        raise errors.owner_required()
    if org.suspended:
        raise errors.organization_suspended(org.suspended_reason)
    if not org.certified:
        raise errors.certification_required()
    row = IdentityVerification(user_id=user.id, organization_id=org.id, purpose=purpose, object_id=object_id)
    subject = await face_subject(session, ctx, user, org)
    opened = await ctx.face_verifier.start(row.id, subject)
    row.provider_ref = opened.reference
    row.vendor_url = opened.url
    if subject is not None:
        row.subject_digest = domain.subject_digest(subject.name, subject.id_number, ctx.hash_key)
    session.add(row)
    return row, opened.url


async def decide(session: AsyncSession, verification_id: str, state: str) -> bool:
    """Decide a pending verification, once: False when it was no longer pending."""
    decided = (
        await session.execute(
            update(IdentityVerification)
            .where(
                col(IdentityVerification.id) == verification_id,
                col(IdentityVerification.state) == "pending",
            )
            .values(state=state, decided_at=utcnow())
            .returning(col(IdentityVerification.id))
        )
    ).first()
    return decided is not None


async def check_with_vendor(
    session: AsyncSession, ctx: IdentityContext, row: IdentityVerification
) -> IdentityVerification:
    """Ask the vendor how a pending check went and decide the verification from it (bound to
    the person who started it and to this check). A decided one is left as it is."""
    if row.state != "pending" or not row.provider_ref:
        return row
    result = await ctx.face_verifier.result(row.provider_ref)
    if result is None:  # the simulated verifier: decided through /dev
        return row
    user = await session.get(User, row.user_id)
    subject = await face_subject(session, ctx, user) if user is not None and user.active else None
    state, why = domain.vendor_decision(
        outcome=result.outcome,
        verification_id=row.id,
        echoed_id=result.extra,
        expected_name=subject.name if subject else None,
        expected_id_number=subject.id_number if subject else None,
        result_name=result.name,
        result_id_number=result.id_number,
        echoes_subject=result.echoes_subject,
        started_for=row.subject_digest,
        now_for=domain.subject_digest(subject.name, subject.id_number, ctx.hash_key) if subject else None,
    )
    if state is None:
        return row
    if await decide(session, row.id, state):
        # No names or ID numbers in the log: the verification, the outcome and why.
        log.info(
            "face_verification_decided",
            verification_id=row.id,
            state=state,
            why=why,
            vendor_code=result.reason,
        )
    await session.refresh(row)
    return row


async def check_returned(
    session: AsyncSession, ctx: IdentityContext, verification_id: str
) -> IdentityVerification:
    """The phone came back from the vendor's page (no platform token there): the verification
    decided from what identity asks the vendor itself, nothing in the request believed."""
    row = await session.get(IdentityVerification, verification_id)
    if row is None:
        raise errors.verification_not_found()
    return await check_with_vendor(session, ctx, row)


def verification_out(ctx: IdentityContext, row: IdentityVerification) -> VerificationOut:
    """The verification as its person sees it; while passed, with a token bound to the person,
    the organisation, the purpose and the object that ends when the check's lifetime does."""
    out = VerificationOut(
        verification_id=row.id,
        purpose=row.purpose,
        object_id=row.object_id,
        state=row.state,
        url=row.vendor_url if row.state == "pending" else None,
    )
    s = ctx.settings
    life = domain.verification_token_life(
        state=row.state, decided_at=row.decided_at, now=utcnow(), ttl_seconds=s.verification_token_ttl_seconds
    )
    if life is None:
        return out
    if life <= 0:
        raise errors.verification_expired()
    out.token = ctx.signer.sign(
        tokens.verification_claims(
            verification_id=row.id,
            user_id=row.user_id,
            org_id=row.organization_id,
            purpose=row.purpose,
            object_id=row.object_id,
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            ttl=life,  # every token issued for this check ends when the check's TTL does
        )
    )
    out.expires_in = life
    return out
