"""Identity's rules, as pure functions (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from zxcvbn import zxcvbn

from common.numbers import SHANGHAI
from common.rules import Refusal

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
SMS_PURPOSES = ("register", "login", "certify", "reset_password")
MEMBER_ROLES = ("owner", "agent")
STAFF_ROLES = ("reviewer", "finance", "administrator")
ID_TYPES = ("resident_id", "hk_macao_tw_permit", "foreign_permanent_residence")
VERIFICATION_PURPOSES = ("seal", "sign_contract")

PASSWORD_MIN, PASSWORD_MAX = 8, 64
PASSWORD_MIN_SCORE = 3  # zxcvbn's 0–4


def valid_phone(phone: str) -> bool:
    return bool(PHONE_RE.match(phone))


def default_user_name(phone: str) -> str:
    """The manual shows new accounts as 用户 + the phone's last four digits (用户7589)."""
    return f"用户{phone[-4:]}"


def contact_name(role: str, user_name: str, legal_rep_name: str | None) -> str:
    """Who the account is, as a counterparty should address it (the ``name`` of its access
    token: orders shows it on an order, 双方接洽). An agent (经办人) is the person the owner named;
    the owner of a certified organisation is its legal representative (认证 binds the owner's
    account to them, and without an agent 法人 does the business); anyone else, the account's name."""
    if role == "owner" and legal_rep_name:
        return legal_rep_name
    return user_name


def check_password(
    password: str, phone: str | None = None, user_inputs: Sequence[str] = (), *, field: str = "new_password"
) -> None:
    """Refuse a password too weak: ``weak_password``, its ``detail`` saying why in Chinese,
    on ``field`` (the form's name for it).

    8–64 characters with at least two of: letters, digits, symbols; not the phone number
    and not one repeated character. (Common to Chinese government platforms; long
    passphrases pass, which the NIST guidance prefers over composition rules alone.)
    Then not guessable: composition rules let ``Password1`` and ``Abc12345`` through, so
    the zxcvbn estimator (common-password lists, words, keyboard patterns, dates, l33t, and
    the account's own phone, name and organisation as ``user_inputs``) must rate it at
    least :data:`PASSWORD_MIN_SCORE` of 4 ("safely unguessable" against offline guessing).
    """

    def weak(why: str) -> Refusal:
        return Refusal("weak_password", detail=why, field=field)

    if len(password) < PASSWORD_MIN:
        raise weak(f"密码长度不能少于 {PASSWORD_MIN} 位")
    if len(password) > PASSWORD_MAX:
        raise weak(f"密码长度不能超过 {PASSWORD_MAX} 位")
    if len(set(password)) == 1:
        raise weak("密码不能由同一个字符组成")
    if phone and phone in password:
        raise weak("密码不能包含手机号")
    classes = sum(
        [
            any(c.isascii() and c.isalpha() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() or not c.isascii() for c in password),
        ]
    )
    if classes < 2:
        raise weak("密码需包含字母、数字、符号中的至少两种")
    inputs = [i for i in (phone, phone[-4:] if phone else None, *user_inputs) if i]
    if zxcvbn(password, user_inputs=inputs)["score"] < PASSWORD_MIN_SCORE:
        raise weak(
            "密码太容易被猜到（常见密码、常见单词、简单规律或与手机号、名称相关），请换一个更复杂的密码"
        )


@dataclass(frozen=True)
class SmsHistory:
    """What the database says about recent sends, for one phone and one client address."""

    last_sent_at: datetime | None
    sent_today_for_phone: int
    sent_today_from_ip: int


@dataclass(frozen=True)
class SmsLimits:
    resend_seconds: int
    daily_cap_per_phone: int
    daily_cap_per_ip: int


def sms_refusal(history: SmsHistory, limits: SmsLimits, now: datetime) -> Refusal | None:
    """``sms_too_frequent`` or ``sms_daily_limit`` when a send must be refused, in Chinese, with
    the seconds to wait (``retry_after``); None when it may go."""
    if history.last_sent_at is not None:
        wait = limits.resend_seconds - (now - history.last_sent_at).total_seconds()
        if wait > 0:
            seconds = int(wait) + 1
            return Refusal(
                "sms_too_frequent", detail=f"验证码发送过于频繁，请 {seconds} 秒后再试", retry_after=seconds
            )
    tomorrow = seconds_until_shanghai_midnight(now)
    if history.sent_today_for_phone >= limits.daily_cap_per_phone:
        return Refusal(
            "sms_daily_limit", detail="该手机号今日获取验证码次数已达上限，请明天再试", retry_after=tomorrow
        )
    if history.sent_today_from_ip >= limits.daily_cap_per_ip:
        return Refusal(
            "sms_daily_limit", detail="当前网络今日获取验证码次数已达上限，请明天再试", retry_after=tomorrow
        )
    return None


def shanghai_day_start(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_until_shanghai_midnight(now: datetime) -> int:
    return int((shanghai_day_start(now) + timedelta(days=1) - now).total_seconds()) + 1


def refresh_state(
    *, used_at: datetime | None, revoked_at: datetime | None, expires_at: datetime, now: datetime
) -> str:
    """``ok``, ``reused`` (a used or revoked token presented again), or ``expired``."""
    if used_at is not None or revoked_at is not None:
        return "reused"
    if expires_at <= now:
        return "expired"
    return "ok"
