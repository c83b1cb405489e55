"""人脸认证: a face check for a purpose and an object; once passed it yields a short-lived
token bound to the person, the organisation, the purpose and the object, which contracts
checks (``common.idv.check_verification_token``) before making a seal or signing."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import CurrentUser
from common.errors import Problem
from common.timers import utcnow
from identity import org_domain, org_service, tokens
from identity.deps import Ctx
from identity.models import IdentityVerification
from identity.org_schemas import VerificationIn, VerificationOut, VerificationStarted

router = APIRouter(prefix="/api/v1/me/identity-verifications", tags=["identity-verification"])


def verification_not_found() -> Problem:
    return Problem(404, "verification_not_found", "人脸认证记录不存在或无权查看")


def _object_problem(body: VerificationIn) -> Problem | None:
    if body.purpose == "sign_contract" and not body.object_id:
        message = "签署合同的人脸认证须指明合同编号"
    elif body.purpose == "seal" and body.object_id:
        message = "制作签章的人脸认证无需指定认证对象"
    else:
        return None
    return Problem(422, "validation_error", message, errors=[{"field": "object_id", "message": message}])


@router.post("", response_model=VerificationStarted, status_code=201, summary="发起人脸认证")
async def start_verification(
    body: VerificationIn, principal: CurrentUser, session: SessionDep, ctx: Ctx
) -> VerificationStarted:
    user, org = await org_service.member(session, principal)
    if problem := _object_problem(body):
        raise problem
    if body.purpose == "seal" and user.role != "owner":
        raise Problem(403, "owner_required", "仅企业账号的法人（注册人）可以制作签章")
    if org.suspended:
        raise org_service.suspended_problem(org)
    if not org.certified:
        raise org_service.certification_required()
    row = IdentityVerification(
        user_id=user.id, organization_id=org.id, purpose=body.purpose, object_id=body.object_id
    )
    row.provider_ref = await ctx.face_verifier.start(row.id, user.id)
    session.add(row)
    await session.commit()
    return VerificationStarted(verification_id=row.id, state=row.state)


@router.get("/{verification_id}", response_model=VerificationOut, summary="查询人脸认证结果")
async def get_verification(
    verification_id: str, principal: CurrentUser, session: SessionDep, ctx: Ctx
) -> VerificationOut:
    user = await org_service.active_user(session, principal)
    row = await session.get(IdentityVerification, verification_id[:36])
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
        raise Problem(410, "verification_expired", "人脸认证结果已过期，请重新进行人脸认证")
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
