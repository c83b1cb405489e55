"""identity.domain.organizations: the pure rules behind the organisation routes (names, bank
accounts, the agent, certification details)."""

from __future__ import annotations

import pytest

from common.rules import Refusal
from identity.domain import organizations


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


def test_every_bad_certification_detail_is_reported() -> None:
    numbers, errors = organizations.certification_errors(
        agreed=False, uscc="x", id_type="resident_id", id_number="y"
    )
    assert numbers is None
    assert [e["field"] for e in errors] == ["agreed", "uscc", "legal_rep_id_number"]
    assert organizations.errors_detail(errors).endswith("（共 3 处错误）")
