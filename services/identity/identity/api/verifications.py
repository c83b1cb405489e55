"""人脸认证: a face check for a purpose and an object; once passed it yields a short-lived
token bound to the person, the organisation, the purpose and the object, which contracts
checks (``common.idv.check_verification_token``) before making a seal or signing."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.errors import Problem
from common.timers import utcnow
from identity import errors, tokens
from identity.deps import ActiveUser, Ctx, Id, Membership
from identity.domain import verifications as org_domain
from identity.models import IdentityVerification
from identity.schemas.verifications import VerificationIn, VerificationOut, VerificationStarted

router = APIRouter(prefix="/api/v1/me/identity-verifications", tags=["identity-verification"])


def verification_not_found() -> Problem:
    return errors.verification_not_found()


def _object_problem(body: VerificationIn) -> Problem | None:
    if body.purpose == "sign_contract" and not body.object_id:
        message = "签署合同的人脸认证须指明合同编号"
    elif body.purpose == "seal" and body.object_id:
        message = "制作签章的人脸认证无需指定认证对象"
    else:
        return None
    return errors.invalid([{"field": "object_id", "message": message}], message)


@router.post("", response_model=VerificationStarted, status_code=201, summary="发起人脸认证")
async def start_verification(
    body: VerificationIn, member: Membership, session: SessionDep, ctx: Ctx
) -> VerificationStarted:
    user, org = member
    if problem := _object_problem(body):
        raise problem
    if body.purpose == "seal" and user.role != "owner":
        raise errors.owner_required()
    if org.suspended:
        raise errors.organization_suspended(org.suspended_reason)
    if not org.certified:
        raise errors.certification_required()
    row = IdentityVerification(
        user_id=user.id, organization_id=org.id, purpose=body.purpose, object_id=body.object_id
    )
    row.provider_ref = await ctx.face_verifier.start(row.id, user.id)
    session.add(row)
    await session.commit()
    return VerificationStarted(verification_id=row.id, state=row.state)


@router.get("/{verification_id}", response_model=VerificationOut, summary="查询人脸认证结果")
async def get_verification(
    verification_id: Id, user: ActiveUser, session: SessionDep, ctx: Ctx
) -> VerificationOut:
    row = await session.get(IdentityVerification, verification_id)
    if row is None or row.user_id != user.id:
        raise verification_not_found()
    out = VerificationOut(
        verification_id=row.id,
        purpose=row.purpose,
        object_id=row.object_id,
        state=row.state,
    )
    s = ctx.settings
    life = org_domain.verification_token_life(
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
