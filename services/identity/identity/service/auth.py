"""Identity's stateful operations: captcha, SMS codes, passwords, sessions, rights taken
away.

Routers stay thin: they validate, call these, and shape the response. Anything that must be
remembered even when the request fails (a captcha used up, a wrong SMS code counted) is
committed on its own before the failure is raised.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import argon2
from sqlalchemy import bindparam, case, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common import access
from common.auth import Principal
from common.bus import emit
from common.crypto import blind_index
from common.events import UserAccessChanged
from common.rules import Refusal
from common.timers import utcnow
from identity import errors, tokens
from identity.context import IdentityContext
from identity.domain import auth as domain
from identity.models import Captcha, Organization, RefreshToken, SmsCode, User

T = TypeVar("T")


# --- captcha -----------------------------------------------------------------------------------

CAPTCHA_ALPHABET = "0123456789"


def new_captcha(session: AsyncSession, ctx: IdentityContext) -> Captcha:
    answer = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(4))
    captcha = Captcha(
        answer=answer, expires_at=utcnow() + timedelta(seconds=ctx.settings.captcha_ttl_seconds)
    )
    session.add(captcha)
    return captcha


async def captcha_png(ctx: IdentityContext, captcha: Captcha) -> bytes:
    answer = captcha.answer
    return await asyncio.to_thread(lambda: ctx.captcha_image.generate(answer).getvalue())


async def spend_captcha_and_commit(session: AsyncSession, captcha_id: str, answer: str) -> None:
    """Single use: a captcha is spent by the first attempt, right or wrong, and that is
    committed at once (it stays spent when the request then fails)."""
    row = (
        await session.execute(
            update(Captcha)
            .where(
                col(Captcha.id) == captcha_id,
                col(Captcha.used_at).is_(None),
                col(Captcha.expires_at) > func.now(),
            )
            .values(used_at=func.now())
            .returning(col(Captcha.answer))
        )
    ).first()
    await session.commit()
    if row is None or not secrets.compare_digest(row[0], answer.strip().upper()):
        raise errors.captcha_invalid()


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
        await session.rollback()
        raise errors.from_refusal(refusal)
    # Only the newest code of a purpose is valid.
    await session.execute(
        update(SmsCode)
        .where(
            col(SmsCode.phone) == phone, col(SmsCode.purpose) == purpose, col(SmsCode.consumed_at).is_(None)
        )
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
    return s.sms_code_ttl_seconds


async def check_sms_code_and_commit(
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
        raise errors.sms_code_invalid()
    if row.attempts >= ctx.settings.sms_max_attempts:
        await session.rollback()
        raise errors.sms_code_locked()
    if not secrets.compare_digest(row.code_hash, _code_hash(ctx, phone, purpose, code.strip())):
        row.attempts += 1
        left = ctx.settings.sms_max_attempts - row.attempts
        if left <= 0:
            row.consumed_at = utcnow()
        session.add(row)
        await session.commit()
        if left <= 0:
            raise errors.sms_code_locked()
        raise errors.sms_code_invalid(left)
    row.consumed_at = utcnow()
    session.add(row)


# --- passwords ---------------------------------------------------------------------------------


async def _argon2(ctx: IdentityContext, fn: Callable[..., T], *args: Any) -> T:
    """``fn`` in one of identity's argon2 threads (``ctx.hashing``): at most
    IDENTITY_PASSWORD_HASH_CONCURRENCY hashes hold their memory at once, the rest wait."""
    return await asyncio.get_running_loop().run_in_executor(ctx.hashing, fn, *args)


async def hash_password(ctx: IdentityContext, password: str) -> str:
    return await _argon2(ctx, ctx.hasher.hash, password)


async def password_matches(ctx: IdentityContext, stored: str | None, password: str) -> bool:
    if not stored:
        # Spend the same time as a real check, so timing does not tell which phones exist.
        await _argon2(ctx, ctx.hasher.hash, password)
        return False
    try:
        return await _argon2(ctx, ctx.hasher.verify, stored, password)
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
        return False


async def require_strong(
    password: str, phone: str | None, user_inputs: Sequence[str] = (), *, field: str = "new_password"
) -> None:
    """Refuse a weak or guessable password (``domain.check_password``); the estimator
    takes some milliseconds of CPU, so it runs in a worker thread."""
    try:
        await asyncio.to_thread(domain.check_password, password, phone, user_inputs, field=field)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None


# --- sessions ----------------------------------------------------------------------------------
#
# A user's row lock orders the tokens issued to them against the rights taken from them:
# issuing takes it shared (FOR SHARE), taking a right away or ending sessions exclusively, and
# both before any refresh-token row. So a token made with the old rights is issued (and its
# refresh row committed) before the change's moment, and the change sees every session that
# exists: nothing issued in parallel escapes it (common.access).


async def lock_user(session: AsyncSession, user_id: str, *, shared: bool = False) -> User | None:
    """The user's row, locked (``shared``: FOR SHARE) and refreshed in the session."""
    stmt = (
        select(User)
        .where(User.id == user_id)
        .with_for_update(read=shared)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(stmt)).first()


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
            phone=user.phone,
            name=domain.contact_name(user.role, user.name, org.legal_rep_name if org else None),
        )
    )


async def issue_tokens(
    session: AsyncSession,
    ctx: IdentityContext,
    user: User,
    org: Organization | None,
    family_id: str | None = None,
) -> TokenPair:
    """A new refresh token (of a new family unless given) and an access token, under the
    user's shared row lock (the rights it carries are the ones the user has now); the caller
    commits."""
    locked = await lock_user(session, user.id, shared=True)
    if locked is None or not locked.active:
        raise errors.account_gone()
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


async def find_refresh(session: AsyncSession, token: str, *, lock: bool = False) -> RefreshToken:
    token_id = tokens.split_refresh_token(token)
    if token_id is None:
        raise errors.refresh_token_invalid()
    query = select(RefreshToken).where(RefreshToken.id == token_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = (await session.exec(query)).first()
    if row is None or not tokens.same_hash(token, row.token_hash):
        raise errors.refresh_token_invalid()
    return row


async def rotate_refresh_and_commit(
    session: AsyncSession, ctx: IdentityContext, token: str
) -> tuple[TokenPair, User]:
    """The next token pair (the caller commits it). A reused token ends its whole family (and
    its access tokens, announced) and a token of a removed account its own, committed at once
    before the refusal."""
    found = await find_refresh(session, token)
    user = await lock_user(session, found.user_id, shared=True)  # the user first, then the row
    row = await find_refresh(session, token, lock=True)
    state = domain.refresh_state(
        used_at=row.used_at, revoked_at=row.revoked_at, expires_at=row.expires_at, now=utcnow()
    )
    if state == "reused":
        # A token used twice means it leaked: end every session of that family, under the
        # user's exclusive lock (taken afresh: no rotation of the family is then in flight).
        user_id, family_id = row.user_id, row.family_id
        await session.rollback()
        owner = await lock_user(session, user_id)
        await revoke_family(session, family_id)
        if owner is not None:
            await take_access_away(
                session, owner.id, owner.organization_id, SESSIONS_REVOKED, session_ids=[family_id]
            )
        await session.commit()
        raise errors.refresh_token_reused()
    if state == "expired":
        await session.rollback()
        raise errors.refresh_token_expired()
    if user is None or not user.active:
        await revoke_family(session, row.family_id)
        await session.commit()
        raise errors.refresh_token_invalid()
    row.used_at = utcnow()
    session.add(row)
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    pair = await issue_tokens(session, ctx, user, org, family_id=row.family_id)
    return pair, user


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=func.now())
    )


async def revoke_user_sessions(
    session: AsyncSession, user_id: str, *, keep_family: str | None = None
) -> list[str]:
    """End the user's sessions (but ``keep_family``); returns the families ended."""
    stmt = update(RefreshToken).where(
        col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None)
    )
    if keep_family:
        stmt = stmt.where(col(RefreshToken.family_id) != keep_family)
    ended = await session.execute(stmt.values(revoked_at=func.now()).returning(col(RefreshToken.family_id)))
    return sorted({family for (family,) in ended})


# --- taking access away (common.access) -------------------------------------------------------

DEACTIVATED = "deactivated"
ROLE_CHANGED = "role_changed"
AGENT_REMOVED = "agent_removed"
SESSIONS_REVOKED = "sessions_revoked"


async def take_access_away(
    session: AsyncSession,
    user_id: str,
    org_id: str | None,
    change: str,
    *,
    session_ids: Iterable[str] = (),
) -> None:
    """The user's access tokens issued before now (every one, or those of ``session_ids``)
    stop working: recorded for identity's own replicas and announced to every other service
    (``identity.user_access_changed``), in the caller's transaction. Call it holding the
    user's row lock (see "sessions")."""
    payload = UserAccessChanged(
        user_id=user_id,
        org_id=org_id,
        change=change,
        not_before=utcnow(),
        session_ids=sorted(set(session_ids)),
    )
    await access.record(session, payload)
    await emit(session, payload, aggregate_id=user_id)


async def end_session(session: AsyncSession, user: User, family_id: str) -> None:
    """退出登录: the session's refresh tokens and its access tokens, no other session's."""
    await lock_user(session, user.id)
    await revoke_family(session, family_id)
    await take_access_away(session, user.id, user.organization_id, SESSIONS_REVOKED, session_ids=[family_id])


async def end_sessions(session: AsyncSession, user: User, *, keep_family: str | None = None) -> None:
    """Every session of the user ends (a password reset), or every one but ``keep_family`` (a
    password change: the device that changed it stays signed in)."""
    await lock_user(session, user.id)
    ended = await revoke_user_sessions(session, user.id, keep_family=keep_family)
    if keep_family is None:
        await take_access_away(session, user.id, user.organization_id, SESSIONS_REVOKED)
    elif ended:
        await take_access_away(session, user.id, user.organization_id, SESSIONS_REVOKED, session_ids=ended)


# --- lookups -----------------------------------------------------------------------------------


async def active_user_by_phone(session: AsyncSession, phone: str) -> User | None:
    return (await session.exec(select(User).where(User.phone == phone, col(User.active).is_(True)))).first()


# Built once: making the statement (operators, coercions, its cache key) cost as much as
# running it, on the read every signed-in page makes.
_USER_AND_ORG = (
    select(User, Organization)
    .outerjoin(Organization, col(Organization.id) == col(User.organization_id))
    .where(col(User.id) == bindparam("user_id"))
)


async def user_and_org(session: AsyncSession, user_id: str) -> tuple[User, Organization | None]:
    """The caller and their organisation in one round trip (the read behind GET /me)."""
    row = (await session.exec(_USER_AND_ORG, params={"user_id": user_id})).first()
    if row is None or not row[0].active:
        raise errors.account_gone()
    return row[0], row[1]


# --- accounts: registration, sign-in, passwords ------------------------------------------------
#
# The route checks the captcha and the SMS code first (``..._and_commit``: a spent captcha
# and a wrong try stand although the request then fails), then calls one of these.


async def register_owner(
    session: AsyncSession, ctx: IdentityContext, phone: str, enterprise_name: str
) -> tuple[TokenPair, User, Organization]:
    """注册: a new organisation and its owner's account for the phone (no active account may
    hold it: the unique index decides a race), signed in."""
    if await active_user_by_phone(session, phone) is not None:
        raise errors.phone_registered()
    org = Organization(name=enterprise_name)
    user = User(phone=phone, name=domain.default_user_name(phone), role="owner", organization_id=org.id)
    session.add(org)
    await session.flush()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise errors.phone_registered() from None
    pair = await issue_tokens(session, ctx, user, org)
    return pair, user, org


async def check_password_and_commit(
    session: AsyncSession, ctx: IdentityContext, phone: str, password: str
) -> User:
    """The active account of ``phone`` when ``password`` is its own and it is not locked. A
    wrong password of an account is counted and committed at once
    (:func:`count_failed_login_and_commit`); a right one clears the count in the caller's
    transaction. An unknown phone costs the same time and gets the same answer."""
    user = await active_user_by_phone(session, phone)
    if user is not None and user.locked_until is not None and user.locked_until > utcnow():
        raise errors.login_locked()
    if not await password_matches(ctx, user.password_hash if user else None, password):
        if user is not None:
            await count_failed_login_and_commit(session, ctx, user.id)
        raise errors.invalid_credentials()
    assert user is not None
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    return user


async def registered_user(session: AsyncSession, phone: str) -> User:
    """The active account of ``phone``; told only to the holder of the right SMS code."""
    user = await active_user_by_phone(session, phone)
    if user is None:
        raise errors.phone_not_registered()
    return user


async def sign_in(
    session: AsyncSession, ctx: IdentityContext, user: User
) -> tuple[TokenPair, Organization | None]:
    """A new session of ``user``: a token pair carrying their organisation's rights now."""
    org = await session.get(Organization, user.organization_id) if user.organization_id else None
    pair = await issue_tokens(session, ctx, user, org)
    return pair, org


async def sign_out(session: AsyncSession, principal: Principal, token: str) -> None:
    """退出登录 of the caller's own session (the refresh token's): a token of anyone else's is
    refused as invalid."""
    row = await find_refresh(session, token)
    if row.user_id != principal.user_id:
        raise errors.refresh_token_invalid()
    account = await session.get(User, row.user_id)
    if account is None:
        raise errors.refresh_token_invalid()
    await end_session(session, account, row.family_id)


async def reset_password(session: AsyncSession, ctx: IdentityContext, phone: str, new_password: str) -> None:
    """忘记密码 (the new password already judged strong, the SMS code checked): the password
    replaced, the lock and the count of failures cleared, and every session of the account
    ended (and every access token issued before now)."""
    user = await registered_user(session, phone)
    user.password_hash = await hash_password(ctx, new_password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    await end_sessions(session, user)


async def change_password(
    session: AsyncSession,
    ctx: IdentityContext,
    principal: Principal,
    old_password: str | None,
    new_password: str,
) -> None:
    """设置或修改密码: the first one set, or a change with the old one; it may not be weak or
    made of the person's phone, name or organisation. The caller's session goes on, the
    others end (their access tokens too)."""
    row, org = await user_and_org(session, principal.user_id)
    if row.password_hash:
        if not old_password or not await password_matches(ctx, row.password_hash, old_password):
            raise errors.old_password_incorrect()
    names = [row.name, *([org.name] if org else [])]
    await require_strong(new_password, row.phone, names)
    row.password_hash = await hash_password(ctx, new_password)
    row.password_changed_at = utcnow()
    session.add(row)
    await end_sessions(session, row, keep_family=principal.session_id)
