"""identity.domain: the pure rules behind the organisation, verification, file and staff routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from common.http import content_disposition
from common.rules import Refusal
from identity.domain import admin, auth, files, organizations, verifications
from identity.domain.files import Reader

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_names_compare_across_full_and_half_width() -> None:
    assert organizations.same_name("广西某某（南宁）机械有限公司", "广西某某(南宁)机械有限公司 ")
    assert not organizations.same_name("广西某某机械有限公司", "广西某某机械厂")
    assert organizations.account_name_refusal("张三", "广西某某机械有限公司") == Refusal(
        "validation_error",
        detail="银行开户名须与认证的企业名称“广西某某机械有限公司”一致（服务券相关款项只能转入本单位账户）",
        field="account_name",
    )


@pytest.mark.parametrize(
    ("typed", "stored", "why"),
    [
        ("6222 0212-3456 7890", "6222021234567890", None),
        ("６２２２０２１２３４５６", "622202123456", None),  # full-width digits from a Chinese IME
        ("1234567", "1234567", "银行账号应为 8 至 30 位数字"),
        ("6222O21234567", "6222O21234567", "银行账号只能包含数字"),
        ("٦٢٢٢٠٢١٢٣٤٥٦", "٦٢٢٢٠٢١٢٣٤٥٦", "银行账号只能包含数字"),  # digits, but not ASCII
    ],
)
def test_account_numbers(typed: str, stored: str, why: str | None) -> None:
    number = organizations.normalize_account_number(typed)
    assert number == stored
    refused = Refusal("validation_error", detail=why, field="account_number") if why else None
    assert organizations.account_number_refusal(number) == refused


def test_the_agent_is_not_the_owners_own_phone() -> None:
    assert organizations.agent_phone_refusal("13800000001", "13800000001") == Refusal(
        "validation_error", detail="经办人手机号不能与当前账号（法人）手机号相同", field="phone"
    )
    assert organizations.agent_phone_refusal("13800000002", "13800000001") is None


def test_field_refusals_and_number_errors_are_listed_alike() -> None:
    refusal = organizations.account_number_refusal("12")
    assert refusal is not None
    assert organizations.field_error(refusal) == {
        "field": "account_number",
        "message": "银行账号应为 8 至 30 位数字",
    }


@pytest.mark.parametrize(
    ("purpose", "object_id", "why"),
    [
        ("sign_contract", None, "签署合同的人脸认证须指明合同编号"),
        ("sign_contract", "", "签署合同的人脸认证须指明合同编号"),
        ("seal", "c-1", "制作签章的人脸认证无需指定认证对象"),
        ("sign_contract", "c-1", None),
        ("seal", None, None),
    ],
)
def test_a_contracts_signature_is_verified_for_one_contract_a_seal_for_none(
    purpose: str, object_id: str | None, why: str | None
) -> None:
    if why is None:
        verifications.check_object(purpose, object_id)
        return
    with pytest.raises(Refusal) as refused:
        verifications.check_object(purpose, object_id)
    assert refused.value == Refusal("validation_error", detail=why, field="object_id")


def test_a_passed_checks_token_lives_from_the_moment_it_passed() -> None:
    life = verifications.verification_token_life
    assert life(state="pending", decided_at=None, now=NOW, ttl_seconds=600) is None
    assert life(state="failed", decided_at=NOW, now=NOW, ttl_seconds=600) is None
    assert life(state="passed", decided_at=NOW, now=NOW, ttl_seconds=600) == 600
    assert life(state="passed", decided_at=NOW, now=NOW + timedelta(seconds=590), ttl_seconds=600) == 10
    assert life(state="passed", decided_at=NOW, now=NOW + timedelta(seconds=601), ttl_seconds=600) == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("营业执照.pdf", "营业执照.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        # PDF bytes named .png are stored as .pdf (security finding 7: the type decides).
        ("C:\\Users\\me\\发票.png", "发票.pdf"),
        ("bad\x00\x07name.pdf", "badname.pdf"),
        ("", "file.pdf"),
        ("..", "file.pdf"),
        (None, "file.pdf"),
        ("x.html", "x.pdf"),
        ("\u202efdp.exe", "fdp.pdf"),
        ("v1.2 report", "v1.2 report.pdf"),
        ("a\u200bb.pdf", "ab.pdf"),
    ],
)
def test_file_names_keep_only_the_last_segment(raw: str | None, expected: str) -> None:
    assert files.clean_file_name(raw, "application/pdf") == expected


def test_long_file_names_keep_their_extension() -> None:
    name = files.clean_file_name("合" * 300 + ".pdf", "application/pdf")
    assert len(name) == 255 and name.endswith(".pdf")


def test_content_disposition_carries_the_chinese_name_safely() -> None:
    value = content_disposition('合同"; x=1.pdf')
    assert value.isascii()
    assert value.startswith('inline; filename="')
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and ";" not in fallback
    assert unquote(value.split("filename*=UTF-8''", 1)[1]) == '合同"; x=1.pdf'


def test_who_may_read_a_file() -> None:
    rule = files.may_read_file
    kw = {"file_org_id": "org-a", "uploader_id": "u-1", "granted_org_ids": {"org-b"}}
    assert rule(Reader("u-1", "owner", "org-a"), **kw)
    assert rule(Reader("u-2", "agent", "org-a"), **kw)
    assert rule(Reader("u-3", "owner", "org-b"), **kw)  # granted
    assert rule(Reader("u-4", "reviewer", None), **kw)
    assert not rule(Reader("u-5", "owner", "org-c"), **kw)
    assert not rule(Reader("u-6", "owner", None), **kw)


@pytest.mark.parametrize(
    ("role", "active", "why"),
    [
        ("reviewer", None, "不能修改自己的角色，请由其他管理员操作"),
        (None, False, "不能停用自己的账号，请由其他管理员操作"),
    ],
)
def test_an_administrator_cannot_demote_or_deactivate_themself(
    role: str | None, active: bool | None, why: str
) -> None:
    with pytest.raises(Refusal) as refused:
        admin.check_own_change(actor_id="a", target_id="a", role=role, active=active)
    assert refused.value == Refusal("cannot_change_self", detail=why)


def test_an_administrator_may_rename_themself_and_change_others() -> None:
    admin.check_own_change(actor_id="a", target_id="a", role="administrator", active=True)
    admin.check_own_change(actor_id="a", target_id="b", role="reviewer", active=False)


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


def test_a_staff_update_changes_only_what_is_given_and_different() -> None:
    now = {"name": "王审核", "role": "reviewer", "active": True}
    assert admin.staff_changes(now, {"name": "王审核", "role": None, "active": None}) == {}
    assert admin.staff_changes(now, {"name": "王财务", "role": "finance", "active": False}) == {
        "name": ["王审核", "王财务"],
        "role": ["reviewer", "finance"],
        "active": [True, False],
    }


def test_size_limits_read_well() -> None:
    assert files.human_size(10 * 1024 * 1024) == "10 MB"
    assert files.human_size(1024) == "1 KB"
    assert files.human_size(500) == "500 B"


def test_every_bad_certification_detail_is_reported() -> None:
    numbers, errors = organizations.certification_errors(
        agreed=False, uscc="x", id_type="resident_id", id_number="y"
    )
    assert numbers is None
    assert [e["field"] for e in errors] == ["agreed", "uscc", "legal_rep_id_number"]
    assert organizations.errors_detail(errors).endswith("（共 3 处错误）")


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


VENDOR_SAYS = {
    "outcome": "passed",
    "verification_id": "v-1",
    "echoed_id": "v-1",
    "expected_name": "张三丰",
    "expected_id_number": "45010219850312001x",
    "result_name": "张 三丰",
    "result_id_number": "45010219850312001X",
}


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, ("passed", "passed")),  # the case of the X and a space in the name do not matter
        ({"outcome": "pending"}, (None, "pending")),
        ({"outcome": "failed"}, ("failed", "vendor_failed")),
        ({"echoed_id": "v-2"}, ("failed", "another_check")),
        ({"echoed_id": None}, ("failed", "another_check")),
        ({"result_id_number": "450102199001010011"}, ("failed", "another_person")),
        ({"result_name": "李四"}, ("failed", "another_person")),
        ({"result_id_number": None}, ("failed", "another_person")),
        ({"expected_id_number": None}, ("failed", "no_subject")),
    ],
)
def test_a_vendors_pass_passes_only_the_same_check_for_the_same_person(
    changes: dict[str, str | None], decision: tuple[str | None, str]
) -> None:
    assert verifications.vendor_decision(**{**VENDOR_SAYS, **changes}) == decision


KEY = "c3ViamVjdC1kaWdlc3Qta2V5LWZvci10aGUtdGVzdHMh"  # base64, 32 bytes
STARTED_FOR = verifications.subject_digest("张三丰", "45010219850312001X", KEY)
# Aliyun: the result names neither the person nor the check.
SILENT_VENDOR_SAYS = {
    **VENDOR_SAYS,
    "echoed_id": None,
    "result_name": None,
    "result_id_number": None,
    "echoes_subject": False,
    "started_for": STARTED_FOR,
    "now_for": verifications.subject_digest("张 三丰", "45010219850312001x", KEY),
}


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, ("passed", "passed")),  # normalised as the echoed person is
        ({"outcome": "pending"}, (None, "pending")),
        ({"outcome": "failed"}, ("failed", "vendor_failed")),
        (
            {"now_for": verifications.subject_digest("张三丰", "450102199001010011", KEY)},
            ("failed", "another_person"),
        ),
        ({"started_for": None}, ("failed", "no_subject")),  # nothing tells whom the vendor compared
        ({"expected_name": None}, ("failed", "no_subject")),
    ],
)
def test_a_silent_vendors_pass_passes_only_for_the_person_the_check_was_started_for(
    changes: dict[str, object], decision: tuple[str | None, str]
) -> None:
    assert verifications.vendor_decision(**{**SILENT_VENDOR_SAYS, **changes}) == decision


def test_an_echoing_vendors_pass_also_fails_when_the_person_changed_since_the_start() -> None:
    other = verifications.subject_digest("张三丰", "450102199001010011", KEY)
    decision = verifications.vendor_decision(**VENDOR_SAYS, started_for=other, now_for=STARTED_FOR)
    assert decision == ("failed", "another_person")


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
