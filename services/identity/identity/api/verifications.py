"""人脸认证: a face check for a purpose and an object; once passed it yields a short-lived
token bound to the person, the organisation, the purpose and the object, which contracts
checks (``common.idv.check_verification_token``) before making a seal or signing."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from common.app import SessionDep
from common.openapi import problems
from identity import errors
from identity.deps import Ctx, Id, Membership, OwnVerification, ReadOwnVerification
from identity.schemas.verifications import (
    VerificationIn,
    VerificationOut,
    VerificationReturned,
    VerificationStarted,
)
from identity.service import verifications as service

router = APIRouter(prefix="/api/v1/me/identity-verifications", tags=["identity-verification"])


@router.post(
    "",
    response_model=VerificationStarted,
    status_code=201,
    summary="发起人脸认证",
    description=(
        "已认证单位的法人或经办人为制作签章（仅法人）或签署某份合同发起人脸认证，返回服务商的认证页面地址"
        "（在手机上打开）；认证通过后在查询结果时得到一个短时有效、只能用于该用途与对象的认证凭证。"
    ),
    response_description="认证编号与服务商认证页面地址",
    responses=problems(
        errors.account_gone,
        errors.organization_not_found,
        errors.owner_required,
        errors.organization_suspended("资料不实"),
        errors.certification_required,
        errors.face_subject_unknown,
        errors.face_verification_unavailable,
        errors.face_verification_misconfigured,
    ),
)
async def start_verification(
    body: VerificationIn, member: Membership, session: SessionDep, ctx: Ctx
) -> VerificationStarted:
    user, org = member
    row, url = await service.start(session, ctx, user, org, body.purpose, body.object_id)
    await session.commit()
    return VerificationStarted(verification_id=row.id, state=row.state, url=url)


@router.get(
    "/{verification_id}",
    response_model=VerificationOut,
    summary="查询人脸认证结果",
    description="本人查询一次人脸认证的状态；已通过且未过期时附认证凭证（token），制作签章或签署合同时提交。",
    response_description="认证状态（通过时附认证凭证）",
    responses=problems(errors.account_gone, errors.verification_not_found, errors.verification_expired),
)
async def get_verification(row: ReadOwnVerification, ctx: Ctx) -> VerificationOut:
    return service.verification_out(ctx, row)


@router.post(
    "/{verification_id}/check",
    response_model=VerificationOut,
    summary="向人脸认证服务商查询结果并判定",
    description=(
        "本人在手机上完成人脸认证后，由身份服务向服务商查询结果并判定（仅发起人本人通过才算通过）；"
        "服务商尚无结果时保持认证中。"
    ),
    response_description="判定后的认证状态（通过时附认证凭证）",
    responses=problems(
        errors.account_gone,
        errors.verification_not_found,
        errors.verification_expired,
        errors.face_verification_unavailable,
        errors.face_verification_misconfigured,
    ),
)
async def check_verification(row: OwnVerification, session: SessionDep, ctx: Ctx) -> VerificationOut:
    """After the person finished on the phone: identity asks the vendor for the result of this
    check and decides it (passed only for the person it was started for); a pending one stays
    pending while the vendor has no result yet."""
    row = await service.check_with_vendor(session, ctx, row)
    await session.commit()
    return service.verification_out(ctx, row)


# Where the vendor's page sends the phone's browser when the check is over (no platform token
# there): identity asks the vendor itself, so nothing in the request is believed.
returns = APIRouter(prefix="/api/v1/identity-verifications", tags=["identity-verification"])


@returns.get(
    "/{verification_id}/return",
    response_model=VerificationReturned,
    summary="人脸认证完成后的返回地址（服务商页面跳转）",
    description=(
        "服务商认证页面结束后浏览器跳转到此地址（无需登录）：身份服务自行向服务商查询结果并判定，"
        "再跳转到门户的认证结果页（未配置门户时返回认证状态）。"
    ),
    response_description="认证状态",
    responses={
        303: {"description": "跳转到门户的人脸认证结果页"},
        **problems(
            errors.verification_not_found,
            errors.face_verification_unavailable,
            errors.face_verification_misconfigured,
        ),
    },
)
async def verification_returned(
    verification_id: Id, session: SessionDep, ctx: Ctx
) -> VerificationReturned | RedirectResponse:
    row = await service.check_returned(session, ctx, verification_id)
    await session.commit()
    if portal := ctx.settings.face_portal_url:
        return RedirectResponse(portal.replace("{verification_id}", row.id), status_code=303)
    return VerificationReturned(verification_id=row.id, state=row.state)
