"""Public identity routes: captcha, SMS codes, registration, sign-in, sessions, /me, JWKS."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Response
from sqlalchemy.exc import IntegrityError

from common.app import SessionDep
from common.auth import CurrentUser
from common.errors import Problem
from common.timers import utcnow
from identity import domain, service
from identity.deps import ClientIp, Ctx
from identity.models import Organization, User
from identity.schemas import (
    CaptchaOut,
    MeOut,
    PasswordChangeIn,
    PasswordLoginIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    SmsCodeIn,
    SmsCodeOut,
    SmsLoginIn,
    TokensOut,
)
from identity.views import organization_out, user_out

router = APIRouter(prefix="/api/v1", tags=["identity"])
jwks_router = APIRouter(tags=["identity"])

INVALID_LOGIN = Problem(401, "invalid_credentials", "手机号或密码错误")


def tokens_out(pair: service.TokenPair, user: User, org: Organization | None) -> TokensOut:
    return TokensOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user=user_out(user),
        organization=organization_out(org),
    )


@jwks_router.get("/.well-known/jwks.json", summary="identity's public signing keys (JWKS)")
async def jwks(ctx: Ctx) -> dict[str, list[dict[str, str]]]:
    return {"keys": [ctx.signer.jwk()]}


@router.get("/captcha", response_model=CaptchaOut, summary="图形验证码")
async def get_captcha(session: SessionDep, ctx: Ctx, response: Response) -> CaptchaOut:
    captcha, image = await service.create_captcha(session, ctx)
    response.headers["Cache-Control"] = "no-store"
    return CaptchaOut(
        captcha_id=captcha.id,
        image_png_base64=base64.b64encode(image).decode(),
        expires_in=ctx.settings.captcha_ttl_seconds,
    )


@router.post("/sms-codes", response_model=SmsCodeOut, status_code=202, summary="获取短信验证码")
async def send_sms_code(body: SmsCodeIn, session: SessionDep, ctx: Ctx, ip: ClientIp) -> SmsCodeOut:
    await service.consume_captcha(session, body.captcha_id, body.captcha_answer)
    user = await service.active_user_by_phone(session, body.phone)
    if body.purpose == "register" and user is not None:
        raise Problem(409, "phone_registered", "该手机号已注册，请直接登录")
    if body.purpose in ("login", "reset_password", "certify") and user is None:
        raise Problem(404, "phone_not_registered", "该手机号尚未注册，请先注册")
    ttl = await service.send_sms_code(session, ctx, body.phone, body.purpose, ip)
    return SmsCodeOut(expires_in=ttl, resend_after=ctx.settings.sms_resend_seconds)


@router.post("/auth/register", response_model=TokensOut, status_code=201, summary="注册（注册即登录）")
async def register(body: RegisterIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    if await service.active_user_by_phone(session, body.phone) is not None:
        raise Problem(409, "phone_registered", "该手机号已注册，请直接登录")
    await service.check_sms_code(session, ctx, body.phone, "register", body.sms_code)
    org = Organization(name=body.enterprise_name)
    user = User(
        phone=body.phone, name=domain.default_user_name(body.phone), role="owner", organization_id=org.id
    )
    session.add(org)
    await session.flush()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, "phone_registered", "该手机号已注册，请直接登录") from None
    pair = await service.issue_tokens(session, ctx, user, org)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post("/auth/login", response_model=TokensOut, summary="账号密码登录")
async def password_login(body: PasswordLoginIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    await service.consume_captcha(session, body.captcha_id, body.captcha_answer)
    user = await service.active_user_by_phone(session, body.phone)
    if user is not None and user.locked_until is not None and user.locked_until > utcnow():
        raise Problem(429, "login_locked", "密码错误次数过多，账号已临时锁定，请稍后再试或使用验证码登录")
    if not await service.password_matches(ctx, user.password_hash if user else None, body.password):
        if user is not None:
            await service.count_failed_login_and_commit(session, ctx, user.id)
        raise INVALID_LOGIN
    assert user is not None
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    pair = await service.issue_tokens(session, ctx, user, org)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post("/auth/login/sms", response_model=TokensOut, summary="验证码登录")
async def sms_login(body: SmsLoginIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    await service.consume_captcha(session, body.captcha_id, body.captcha_answer)
    await service.check_sms_code(session, ctx, body.phone, "login", body.sms_code)
    user = await service.active_user_by_phone(session, body.phone)
    if user is None:
        raise Problem(400, "sms_code_invalid", "短信验证码错误或已过期，请重新获取")
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    pair = await service.issue_tokens(session, ctx, user, org)
    await session.commit()
    return tokens_out(pair, user, org)


@router.post("/auth/refresh", response_model=TokensOut, summary="刷新登录凭证（轮换）")
async def refresh(body: RefreshIn, session: SessionDep, ctx: Ctx) -> TokensOut:
    pair, user = await service.rotate_refresh(session, ctx, body.refresh_token)
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    return tokens_out(pair, user, org)


@router.post("/auth/logout", status_code=204, summary="退出登录")
async def logout(body: RefreshIn, user: CurrentUser, session: SessionDep) -> Response:
    row = await service.find_refresh(session, body.refresh_token)
    if row.user_id != user.user_id:
        raise Problem(401, "refresh_token_invalid", "登录已失效，请重新登录")
    await service.revoke_family(session, row.family_id)
    await session.commit()
    return Response(status_code=204)


@router.post("/auth/password/reset", status_code=204, summary="忘记密码")
async def reset_password(body: PasswordResetIn, session: SessionDep, ctx: Ctx) -> Response:
    service.require_strong(body.new_password, body.phone)
    await service.check_sms_code(session, ctx, body.phone, "reset_password", body.sms_code)
    user = await service.active_user_by_phone(session, body.phone)
    if user is None:
        raise Problem(400, "sms_code_invalid", "短信验证码错误或已过期，请重新获取")
    user.password_hash = await service.hash_password(ctx, body.new_password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    await service.revoke_user_sessions(session, user.id)
    await session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="当前用户与所属组织")
async def me(user: CurrentUser, session: SessionDep) -> MeOut:
    row, org = await service.user_and_org(session, user.user_id)
    return MeOut(user=user_out(row), organization=organization_out(org))


@router.put("/me/password", status_code=204, summary="设置或修改密码（安全设置）")
async def change_password(
    body: PasswordChangeIn, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> Response:
    row, _org = await service.user_and_org(session, user.user_id)
    if row.password_hash:
        if not body.old_password or not await service.password_matches(
            ctx, row.password_hash, body.old_password
        ):
            raise Problem(400, "old_password_incorrect", "原密码不正确")
    service.require_strong(body.new_password, row.phone)
    row.password_hash = await service.hash_password(ctx, body.new_password)
    row.password_changed_at = utcnow()
    session.add(row)
    # Other sessions end; this one goes on.
    await service.revoke_user_sessions(session, row.id, keep_family=user.session_id)
    await session.commit()
    return Response(status_code=204)
