"""Public identity routes: captcha, SMS codes, registration, sign-in, sessions, /me, JWKS."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Response

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser
from common.openapi import problems
from common.timers import utcnow
from identity import errors
from identity.deps import ClientIp, Ctx
from identity.domain import auth as domain
from identity.models import Organization, User
from identity.schemas.auth import (
    CaptchaOut,
    MeOut,
    OrganizationOut,
    PasswordChangeIn,
    PasswordLoginIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    SmsCodeIn,
    SmsCodeOut,
    SmsLoginIn,
    TokensOut,
    UserOut,
)
from identity.service import auth as service

_SAMPLE_NOW = utcnow()
_SAMPLE_LIMITS = domain.SmsLimits(60, 10, 50)
# The two refusals of the SMS limits (domain.sms_refusal): too soon after the last code, the
# day's cap reached.
SMS_LIMITS = [
    errors.from_refusal(refusal)
    for history in (
        domain.SmsHistory(_SAMPLE_NOW, 0, 0),
        domain.SmsHistory(None, _SAMPLE_LIMITS.daily_cap_per_phone, 0),
    )
    if (refusal := domain.sms_refusal(history, _SAMPLE_LIMITS, _SAMPLE_NOW))
]
SMS_SENDING = (
    errors.sms_unavailable,
    errors.sms_rate_limited,
    errors.sms_quota_exceeded,
    errors.sms_phone_invalid,
    errors.sms_phone_blocked,
    errors.sms_misconfigured,
)
SMS_CODE = (errors.sms_code_invalid, errors.sms_code_locked)
WEAK_PASSWORD = errors.weak_password("密码过于简单，请避免使用常见密码、手机号或姓名")

router = APIRouter(prefix="/api/v1", tags=["identity"])
jwks_router = APIRouter(tags=["identity"])


def tokens_out(pair: service.TokenPair, user: User, org: Organization | None) -> TokensOut:
    return TokensOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user=UserOut.model_validate(user),
        organization=OrganizationOut.model_validate(org) if org else None,
    )


@jwks_router.get(
    "/.well-known/jwks.json",
    summary="登录凭证验签公钥（JWKS）",
    description="身份服务签发登录凭证（EdDSA）所用的公钥，供各服务与网关验证访问令牌；轮换签名密钥期间同时包含上一把密钥的公钥，轮换前签发的凭证在过期前仍然有效。无需登录。",
    response_description="JWKS 公钥集",
)
async def jwks(ctx: Ctx) -> dict[str, list[dict[str, str]]]:
    return ctx.signer.jwks()


@router.get(
    "/captcha",
    response_model=CaptchaOut,
    summary="图形验证码",
    description="获取一张新的图形验证码（PNG，Base64）及其编号；获取短信验证码与账号密码登录时提交，用过即失效。无需登录。",
    response_description="图形验证码及其有效期（秒）",
)
async def get_captcha(session: SessionDep, ctx: Ctx, response: Response) -> CaptchaOut:
    captcha = service.new_captcha(session, ctx)
    await session.commit()
    image = await service.captcha_png(ctx, captcha)
    response.headers["Cache-Control"] = "no-store"
    return CaptchaOut(
        captcha_id=captcha.id,
        image_png_base64=base64.b64encode(image).decode(),
        expires_in=ctx.settings.captcha_ttl_seconds,
    )


@router.post(
    "/sms-codes",
    response_model=SmsCodeOut,
    status_code=202,
    summary="获取短信验证码",
    description=(
        "校验图形验证码后，向手机号发送用于注册、验证码登录、忘记密码或更换经办人的 6 位短信验证码。"
        "无论手机号是否已注册，应答都相同；同一手机号须间隔一段时间才能再次获取，每个手机号与每个网络"
        "每天有次数上限。无需登录。"
    ),
    response_description="已受理：验证码有效期与可重新获取的等待时间（秒）",
    responses=problems(errors.captcha_invalid, *SMS_LIMITS, *SMS_SENDING),
)
async def send_sms_code(body: SmsCodeIn, session: SessionDep, ctx: Ctx, ip: ClientIp) -> SmsCodeOut:
    """The same answer, and the same work (a code stored and sent), whether the phone is
    registered or not: this route must not tell anyone which phones have accounts. A code
    sent to a registered phone for 注册 (or to a free one for 登录) only reaches the phone's
    owner, and the refusal (``phone_registered`` / ``phone_not_registered``) comes when that
    code is submitted, to whoever holds it."""
    await service.spend_captcha_and_commit(session, body.captcha_id, body.captcha_answer)
    ttl = await service.send_sms_code(session, ctx, body.phone, body.purpose, ip)
    await session.commit()
    return SmsCodeOut(expires_in=ttl, resend_after=ctx.settings.sms_resend_seconds)


@router.post(
    "/auth/register",
    response_model=TokensOut,
    status_code=201,
    summary="注册（注册即登录）",
    description=(
        "以手机号、短信验证码与企业名称注册企业账号（注册人为企业法人账号），注册即登录。"
        "注册后须完成企业信息认证才能申请服务券或成为服务机构。"
    ),
    response_description="新账号的登录凭证、用户与企业",
    responses=problems(*SMS_CODE, errors.phone_registered),
)
async def register(body: RegisterIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    # The code first: only its holder may learn that the phone is registered already.
    await service.check_sms_code_and_commit(session, ctx, body.phone, "register", body.sms_code)
    pair, user, org = await service.register_owner(session, ctx, body.phone, body.enterprise_name)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post(
    "/auth/login",
    response_model=TokensOut,
    summary="账号密码登录",
    description="以手机号、密码与图形验证码登录；密码连续错误多次后账号临时锁定（可改用验证码登录）。",
    response_description="登录凭证（访问令牌与刷新令牌）、用户与所属组织",
    responses=problems(errors.captcha_invalid, errors.invalid_credentials, errors.login_locked),
)
async def password_login(body: PasswordLoginIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    await service.spend_captcha_and_commit(session, body.captcha_id, body.captcha_answer)
    user = await service.check_password_and_commit(session, ctx, body.phone, body.password)
    pair, org = await service.sign_in(session, ctx, user)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post(
    "/auth/login/sms",
    response_model=TokensOut,
    summary="验证码登录",
    description="以手机号、短信验证码与图形验证码登录。",
    response_description="登录凭证（访问令牌与刷新令牌）、用户与所属组织",
    responses=problems(errors.captcha_invalid, *SMS_CODE, errors.phone_not_registered),
)
async def sms_login(body: SmsLoginIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    await service.spend_captcha_and_commit(session, body.captcha_id, body.captcha_answer)
    await service.check_sms_code_and_commit(session, ctx, body.phone, "login", body.sms_code)
    user = await service.registered_user(session, body.phone)
    pair, org = await service.sign_in(session, ctx, user)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post(
    "/auth/refresh",
    response_model=TokensOut,
    summary="刷新登录凭证（轮换）",
    description=(
        "以刷新令牌换取新的访问令牌与刷新令牌，原刷新令牌随即失效；已用过的刷新令牌再次使用时，"
        "为保障账号安全该次登录的全部凭证失效，须重新登录。"
    ),
    response_description="新的登录凭证、用户与所属组织",
    responses=problems(
        errors.refresh_token_invalid,
        errors.refresh_token_reused,
        errors.refresh_token_expired,
        errors.account_gone,
    ),
)
async def refresh(body: RefreshIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    pair, user = await service.rotate_refresh_and_commit(session, ctx, body.refresh_token)
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    await session.commit()
    return tokens_out(pair, user, org)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="退出登录",
    description="结束本次登录：刷新令牌立即失效，访问令牌在各服务数秒内失效；其他设备上的登录不受影响。",
    response_description="已退出登录",
    responses=problems(errors.refresh_token_invalid),
)
async def logout(body: RefreshIn, user: CurrentUser, session: SessionDep) -> Response:
    """The session ends: its refresh token and, within seconds everywhere, its access token;
    the user's other devices stay signed in."""
    await service.sign_out(session, user, body.refresh_token)
    await session.commit()
    return Response(status_code=204)


@router.post(
    "/auth/password/reset",
    status_code=204,
    summary="忘记密码",
    description="以手机号与短信验证码重设密码；该账号的全部登录随之失效，须以新密码重新登录。无需登录。",
    response_description="密码已重设",
    responses=problems(WEAK_PASSWORD, *SMS_CODE, errors.phone_not_registered),
)
async def reset_password(body: PasswordResetIn, session: SessionDep, ctx: Ctx) -> Response:
    await service.require_strong(body.new_password, body.phone)
    await service.check_sms_code_and_commit(session, ctx, body.phone, "reset_password", body.sms_code)
    await service.reset_password(session, ctx, body.phone, body.new_password)
    await session.commit()
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=MeOut,
    summary="当前用户与所属组织",
    description="当前登录的用户（姓名、手机号、角色）及其所属企业或服务机构（认证状态、能力、是否暂停）。",
    response_description="当前用户与所属组织",
    responses=problems(errors.account_gone),
)
async def me(user: CurrentUser, session: ReadSessionDep) -> MeOut:
    row, org = await service.user_and_org(session, user.user_id)
    return MeOut(
        user=UserOut.model_validate(row),
        organization=OrganizationOut.model_validate(org) if org else None,
    )


@router.put(
    "/me/password",
    status_code=204,
    summary="设置或修改密码（安全设置）",
    description="首次设置密码，或凭原密码修改密码；本次登录保持，其他设备上的登录随之失效。",
    response_description="密码已设置",
    responses=problems(errors.old_password_incorrect, WEAK_PASSWORD, errors.account_gone),
)
async def change_password(
    body: PasswordChangeIn, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> Response:
    await service.change_password(session, ctx, user, body.old_password, body.new_password)
    await session.commit()
    return Response(status_code=204)
