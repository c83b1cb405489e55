"""identity.domain.auth: the pure rules behind the sign-in routes (SMS codes, a token's contact
name, passwords)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.rules import Refusal
from identity.domain import auth

from .samples import NOW

SMS_LIMITS = auth.SmsLimits(resend_seconds=60, daily_cap_per_phone=10, daily_cap_per_ip=50)
UNTIL_MIDNIGHT = 8 * 3600 + 1  # NOW is 16:00 in Shanghai


@pytest.mark.parametrize(
    ("history", "refusal"),
    [
        (auth.SmsHistory(None, 0, 0), None),
        (auth.SmsHistory(NOW - timedelta(seconds=60), 9, 49), None),
        (
            auth.SmsHistory(NOW - timedelta(seconds=20), 0, 0),
            Refusal("sms_too_frequent", detail="验证码发送过于频繁，请 41 秒后再试", retry_after=41),
        ),
        (
            auth.SmsHistory(None, 10, 0),
            Refusal(
                "sms_daily_limit",
                detail="该手机号今日获取验证码次数已达上限，请明天再试",
                retry_after=UNTIL_MIDNIGHT,
            ),
        ),
        (
            auth.SmsHistory(None, 0, 50),
            Refusal(
                "sms_daily_limit",
                detail="当前网络今日获取验证码次数已达上限，请明天再试",
                retry_after=UNTIL_MIDNIGHT,
            ),
        ),
    ],
)
def test_sms_codes_are_refused_too_soon_after_the_last_and_past_the_days_caps(
    history: auth.SmsHistory, refusal: Refusal | None
) -> None:
    assert auth.sms_refusal(history, SMS_LIMITS, NOW) == refusal


@pytest.mark.parametrize(
    ("role", "user_name", "legal_rep", "named"),
    [
        ("owner", "用户7589", "张三丰", "张三丰"),  # certified: the legal representative
        ("owner", "用户7589", None, "用户7589"),  # not certified yet: the account
        ("agent", "李经办", "张三丰", "李经办"),  # 经办人: the person the owner named
        ("reviewer", "平台审核员", None, "平台审核员"),
    ],
)
def test_a_tokens_contact_name_is_the_person_a_counterparty_deals_with(
    role: str, user_name: str, legal_rep: str | None, named: str
) -> None:
    assert auth.contact_name(role, user_name, legal_rep) == named


@pytest.mark.parametrize(
    "password",
    ["Password1", "Abc12345", "P@ssw0rd", "Aa123456", "Qwerty123", "Admin@123", "Welcome1!"],
)
def test_common_and_guessable_passwords_are_refused_in_chinese(password: str) -> None:
    with pytest.raises(Refusal) as refused:
        auth.check_password(password, "13812346433")
    assert refused.value == Refusal(
        "weak_password",
        detail="密码太容易被猜到（常见密码、常见单词、简单规律或与手机号、名称相关），请换一个更复杂的密码",
        field="new_password",
    )


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("Ab1", "密码长度不能少于 8 位"),
        ("Ab1" * 22, "密码长度不能超过 64 位"),
        ("aaaaaaaa", "密码不能由同一个字符组成"),
        ("x13812346433", "密码不能包含手机号"),
        ("abcdefghij", "密码需包含字母、数字、符号中的至少两种"),
    ],
)
def test_a_password_against_the_composition_rules_is_refused_on_its_field(password: str, why: str) -> None:
    with pytest.raises(Refusal) as refused:
        auth.check_password(password, "13812346433", field="password")
    assert refused.value == Refusal("weak_password", detail=why, field="password")


@pytest.mark.parametrize(
    ("password", "names"), [("Zhangwei6433", ("张伟", "zhangwei")), ("Guilinjixie-1", ("guilinjixie",))]
)
def test_a_password_made_of_the_users_own_name_or_phone_is_refused(
    password: str, names: tuple[str, ...]
) -> None:
    with pytest.raises(Refusal) as refused:
        auth.check_password(password, "13812346433", names)
    assert refused.value.code == "weak_password"


@pytest.mark.parametrize(
    "password",
    ["Demo-2024", "Admin-2024", "Gx2024-voucher", "Qx7!vB2#mTq9", "correct horse battery staple 2024"],
)
def test_passwords_hard_to_guess_pass(password: str) -> None:
    auth.check_password(password, "13812346433", ("用户6433", "广西测试制造有限公司"))
