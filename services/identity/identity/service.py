"""Identity's stateful operations: captcha, SMS codes, passwords, sessions, audit.

Routers stay thin: they validate, call these, and shape the response. Anything that must be
remembered even when the request fails (a captcha used up, a wrong SMS code counted) is
committed on its own before the failure is raised.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import argon2
from captcha.image import ImageCaptcha
from sqlalchemy import case, func, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.crypto import FieldCipher, blind_index
from common.errors import Problem
from common.storage import FileStorage
from common.timers import utcnow
from identity import domain, tokens
from identity.config import Settings
from identity.models import AuditEntry, Captcha, Organization, RefreshToken, SmsCode, User
from identity.providers import EnterpriseVerifier, FaceVerifier, SmsProvider


@dataclass
class IdentityContext:
    """Everything identity's routes need besides the request: set up once at start."""

    settings: Settings
    signer: tokens.Signer
    sms: SmsProvider
    enterprise_verifier: EnterpriseVerifier
    face_verifier: FaceVerifier
    cipher: FieldCipher
    hash_key: str
    storage: FileStorage
    hasher: argon2.PasswordHasher = field(init=False)
    captcha_image: ImageCaptcha = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.hasher = argon2.PasswordHasher(
            time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib, parallelism=s.argon2_parallelism
        )
        self.captcha_image = ImageCaptcha(width=120, height=48)


# --- captcha -----------------------------------------------------------------------------------

CAPTCHA_ALPHABET = "0123456789"


async def create_captcha(session: AsyncSession, ctx: IdentityContext) -> tuple[Captcha, bytes]:
    answer = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(4))
    captcha = Captcha(
        answer=answer, expires_at=utcnow() + timedelta(seconds=ctx.settings.captcha_ttl_seconds)
    )
    session.add(captcha)
    await session.commit()
    image = await asyncio.to_thread(lambda: ctx.captcha_image.generate(answer).getvalue())
    return captcha, image


async def consume_captcha(session: AsyncSession, captcha_id: str, answer: str) -> None:
    """Single use: a captcha is spent by the first attempt, right or wrong."""
    row = (
        await session.execute(
            update(Captcha)
            .where(
                col(Captcha.id) == captcha_id[:36],
                col(Captcha.used_at).is_(None),
                col(Captcha.expires_at) > func.now(),
            )
            .values(used_at=func.now())
            .returning(Captcha.answer)
        )
    ).first()
    await session.commit()
    if row is None or not secrets.compare_digest(row[0], answer.strip().upper()):
        raise Problem(400, "captcha_invalid", "图形验证码错误或已失效，请刷新后重试")


# --- password sign-in failures ------------------------------------------------------------------


async def count_failed_login_and_commit(session: AsyncSession, ctx: IdentityContext, user_id: str) -> None:
    """One wrong password, counted in one atomic UPDATE (the row lock serialises parallel
    guesses, so each one counts) and committed at once, so the count stands although the
    request then fails. The ``login_max_failures``-th failure locks the account."""
    s = ctx.settings
    reached = col(User.failed_logins) + 1 >= s.login_max_failures
    await session.execute(
        update(User)
        .where(col(User.id) == user_id)
        .values(
            failed_logins=case((reached, 0), else_=col(User.failed_logins) + 1),
            locked_until=case(
                (reached, utcnow() + timedelta(seconds=s.login_lock_seconds)), else_=col(User.locked_until)
            ),
        )
    )
    await session.commit()


# --- SMS codes ---------------------------------------------------------------------------------


def _code_hash(ctx: IdentityContext, phone: str, purpose: str, code: str) -> str:
    return blind_index(f"{phone}:{purpose}:{code}", ctx.hash_key)


async def send_sms_code(
    session: AsyncSession, ctx: IdentityContext, phone: str, purpose: str, client_ip: str
) -> int:
    """Send a code if the limits allow; return its lifetime in seconds."""
    s = ctx.settings
    # One sender per phone and per address at a time: the limits below are check-then-act.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"sms-phone:{phone}"})
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"sms-ip:{client_ip}"})
    now = utcnow()
    day_start = domain.shanghai_day_start(now)
    last = (await session.exec(select(func.max(SmsCode.created_at)).where(SmsCode.phone == phone))).one()
    today_phone = (
        await session.exec(
            select(func.count()).where(SmsCode.phone == phone, col(SmsCode.created_at) >= day_start)
        )
    ).one()
    today_ip = (
        await session.exec(
            select(func.count()).where(SmsCode.client_ip == client_ip, col(SmsCode.created_at) >= day_start)
        )
    ).one()
    history = domain.SmsHistory(last, int(today_phone), int(today_ip))
    limits = domain.SmsLimits(s.sms_resend_seconds, s.sms_daily_cap_per_phone, s.sms_daily_cap_per_ip)
    if refusal := domain.sms_refusal(history, limits, now):
        code_name, detail, retry_after = refusal
        await session.rollback()
        raise Problem(
            429, code_name, detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after
        )
    # Only the newest code of a purpose is valid.
    await session.execute(
        update(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == purpose, col(SmsCode.consumed_at).is_(None))
        .values(consumed_at=now)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        SmsCode(
            phone=phone,
            purpose=purpose,
            code_hash=_code_hash(ctx, phone, purpose, code),
            client_ip=client_ip,
            expires_at=now + timedelta(seconds=s.sms_code_ttl_seconds),
        )
    )
    await ctx.sms.send(session, phone, purpose, code)
    await session.commit()
    return s.sms_code_ttl_seconds


async def check_sms_code(
    session: AsyncSession, ctx: IdentityContext, phone: str, purpose: str, code: str
) -> None:
    """Accept the newest live code for (phone, purpose) or raise. A wrong try is counted and
    committed at once; after the last allowed try the code is dead. On success the code is
    marked consumed in the caller's transaction (it commits with the caller's effect)."""
    row = (
        await session.exec(
            select(SmsCode)
            .where(
                SmsCode.phone == phone,
                SmsCode.purpose == purpose,
                col(SmsCode.consumed_at).is_(None),
                col(SmsCode.expires_at) > func.now(),
            )
            .order_by(col(SmsCode.created_at).desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None:
        await session.rollback()
        raise Problem(400, "sms_code_invalid", "短信验证码错误或已过期，请重新获取")
    if row.attempts >= ctx.settings.sms_max_attempts:
        await session.rollback()
        raise Problem(429, "sms_code_locked", "验证码错误次数过多，请重新获取")
    if not secrets.compare_digest(row.code_hash, _code_hash(ctx, phone, purpose, code.strip())):
        row.attempts += 1
        left = ctx.settings.sms_max_attempts - row.attempts
        if left <= 0:
            row.consumed_at = utcnow()
        session.add(row)
        await session.commit()
        if left <= 0:
            raise Problem(429, "sms_code_locked", "验证码错误次数过多，请重新获取")
        raise Problem(400, "sms_code_invalid", f"短信验证码错误，还可尝试 {left} 次", attempts_left=left)
    row.consumed_at = utcnow()
    session.add(row)


# --- passwords ---------------------------------------------------------------------------------


async def hash_password(ctx: IdentityContext, password: str) -> str:
    return await asyncio.to_thread(ctx.hasher.hash, password)


async def password_matches(ctx: IdentityContext, stored: str | None, password: str) -> bool:
    if not stored:
        # Spend the same time as a real check, so timing does not tell which phones exist.
        await asyncio.to_thread(ctx.hasher.hash, password)
        return False
    try:
        return await asyncio.to_thread(ctx.hasher.verify, stored, password)
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
        return False


def require_strong(password: str, phone: str | None) -> None:
    if why := domain.password_problem(password, phone):
        raise Problem(422, "weak_password", why, errors=[{"field": "new_password", "message": why}])


# --- sessions ----------------------------------------------------------------------------------


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


def access_token_for(ctx: IdentityContext, user: User, org: Organization | None, session_id: str) -> str:
    s = ctx.settings
    return ctx.signer.sign(
        tokens.access_claims(
            user_id=user.id,
            role=user.role,
            org_id=org.id if org else None,
            capabilities=org.capabilities if org else [],
            session_id=session_id,
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            ttl=s.access_ttl_seconds,
        )
    )


async def issue_tokens(
    session: AsyncSession,
    ctx: IdentityContext,
    user: User,
    org: Organization | None,
    family_id: str | None = None,
) -> TokenPair:
    """A new refresh token (of a new family unless given) and an access token; the caller commits."""
    family = family_id or tokens.new_refresh_token()[0]
    token_id, token, token_hash = tokens.new_refresh_token()
    session.add(
        RefreshToken(
            id=token_id,
            family_id=family,
            user_id=user.id,
            token_hash=token_hash,
            expires_at=utcnow() + timedelta(seconds=ctx.settings.refresh_ttl_seconds),
        )
    )
    return TokenPair(access_token_for(ctx, user, org, family), token, ctx.settings.access_ttl_seconds, family)


def _bad_refresh(code: str = "refresh_token_invalid", detail: str = "登录已失效，请重新登录") -> Problem:
    return Problem(401, code, detail)


async def find_refresh(session: AsyncSession, token: str, *, lock: bool = False) -> RefreshToken:
    token_id = tokens.split_refresh_token(token)
    if token_id is None:
        raise _bad_refresh()
    query = select(RefreshToken).where(RefreshToken.id == token_id)
    if lock:
        query = query.with_for_update()
    row = (await session.exec(query)).first()
    if row is None or not tokens.same_hash(token, row.token_hash):
        raise _bad_refresh()
    return row


async def rotate_refresh(session: AsyncSession, ctx: IdentityContext, token: str) -> tuple[TokenPair, User]:
    row = await find_refresh(session, token, lock=True)
    state = domain.refresh_state(
        used_at=row.used_at, revoked_at=row.revoked_at, expires_at=row.expires_at, now=utcnow()
    )
    if state == "reused":
        # A token used twice means it leaked: end every session of that family.
        await revoke_family(session, row.family_id)
        await session.commit()
        raise _bad_refresh("refresh_token_reused", "登录凭证已被使用，为保障账号安全已退出登录，请重新登录")
    if state == "expired":
        await session.rollback()
        raise _bad_refresh("refresh_token_expired", "登录已过期，请重新登录")
    user = await session.get(User, row.user_id)
    if user is None or not user.active:
        await revoke_family(session, row.family_id)
        await session.commit()
        raise _bad_refresh()
    row.used_at = utcnow()
    session.add(row)
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    pair = await issue_tokens(session, ctx, user, org, family_id=row.family_id)
    await session.commit()
    return pair, user


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=func.now())
    )


async def revoke_user_sessions(
    session: AsyncSession, user_id: str, *, keep_family: str | None = None
) -> None:
    stmt = update(RefreshToken).where(RefreshToken.user_id == user_id, col(RefreshToken.revoked_at).is_(None))
    if keep_family:
        stmt = stmt.where(RefreshToken.family_id != keep_family)
    await session.execute(stmt.values(revoked_at=func.now()))


# --- lookups and audit -------------------------------------------------------------------------


async def active_user_by_phone(session: AsyncSession, phone: str) -> User | None:
    return (await session.exec(select(User).where(User.phone == phone, col(User.active).is_(True)))).first()


async def user_and_org(session: AsyncSession, user_id: str) -> tuple[User, Organization | None]:
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise Problem(401, "unauthenticated", "账号不存在或已停用，请重新登录")
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    return user, org


def audit(
    session: AsyncSession,
    *,
    actor_id: str,
    actor_role: str,
    action: str,
    target_type: str,
    target_id: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            actor_role=actor_role,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            details=details or {},
        )
    )
