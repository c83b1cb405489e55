"""USCC and personal ID numbers: valid ones pass in their stored form, bad ones say why in Chinese."""

from __future__ import annotations

from datetime import timedelta

import pytest
from stdnum.cn import ric, uscc

from common.idnumbers import (
    FOREIGN_PERMANENT_RESIDENCE,
    HK_MACAO_TW_PERMIT,
    ID_TYPES,
    RESIDENT_ID,
    InvalidNumber,
    validate_id_number,
    validate_uscc,
)
from common.numbers import shanghai_now


def with_uscc_check(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


def with_gb11643_check(first17: str) -> str:
    # stdnum's ric.calc_check_digit takes the whole number and ignores its last character.
    return first17 + ric.calc_check_digit(first17 + "0")


def wrong_last(number: str) -> str:
    return number[:-1] + ("1" if number[-1] != "1" else "2")


# A Nanning company (450100), and the published example of python-stdnum.
NANNING_USCC = with_uscc_check("91450100MA5K12345")
STDNUM_USCC = "91110000600037341L"
# A resident of 南宁市兴宁区 (450102) born 1990-01-01, and stdnum's published example.
NANNING_ID = with_gb11643_check("45010219900101123")
STDNUM_ID = "360426199101010071"


def reason(exc: pytest.ExceptionInfo[InvalidNumber]) -> str:
    return exc.value.message


# ----------------------------------------------------------------------------- USCC


def test_valid_usccs_pass_in_stored_form() -> None:
    assert validate_uscc(STDNUM_USCC) == STDNUM_USCC
    assert validate_uscc(NANNING_USCC) == NANNING_USCC
    # What people paste: lowercase, spaces, dashes, full-width digits.
    assert validate_uscc(" " + NANNING_USCC.lower()[:9] + " - " + NANNING_USCC.lower()[9:]) == NANNING_USCC
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in NANNING_USCC)
    assert validate_uscc(full_width) == NANNING_USCC


def test_uscc_with_a_letter_for_registering_authority_is_valid() -> None:
    # 农村集体经济组织 are registered by 农业 and their codes begin with N.
    code = with_uscc_check("N2450102MA0000001")
    assert validate_uscc(code) == code


def test_uscc_with_wrong_check_digit() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc(wrong_last(NANNING_USCC))
    assert reason(exc) == "统一社会信用代码校验位不正确"
    assert exc.value.field == "uscc"
    assert isinstance(exc.value, ValueError)
    assert str(exc.value) == "统一社会信用代码校验位不正确"


@pytest.mark.parametrize("value", ["9145010", NANNING_USCC + "1", "12345"])
def test_uscc_of_wrong_length(value: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc(value)
    assert reason(exc) == "统一社会信用代码长度应为18位"


def test_uscc_with_invalid_characters_names_the_character() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc("91450100MA5KO2345X")  # the letter O instead of zero
    assert reason(exc).startswith("统一社会信用代码包含无效字符“O”")
    assert "I、O、Z、S、V" in reason(exc)
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc("9145010#MA5K12345X")
    assert reason(exc) == "统一社会信用代码包含无效字符“#”"
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc("9145A100MA5K12345X")  # letters in the region code
    assert "包含无效字符" in reason(exc)


def test_empty_uscc_asks_for_one() -> None:
    for value in ("", "   "):
        with pytest.raises(InvalidNumber) as exc:
            validate_uscc(value)
        assert reason(exc) == "请填写统一社会信用代码"


def test_uscc_field_name_is_the_callers() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_uscc("123", field="provider_uscc")
    assert exc.value.field == "provider_uscc"


# ----------------------------------------------------------------------------- resident ID


def test_valid_resident_ids() -> None:
    assert validate_id_number(RESIDENT_ID, NANNING_ID) == NANNING_ID
    assert validate_id_number(RESIDENT_ID, STDNUM_ID) == STDNUM_ID
    assert (
        validate_id_number(RESIDENT_ID, f" {NANNING_ID[:6]} {NANNING_ID[6:14]} {NANNING_ID[14:]} ")
        == NANNING_ID
    )


def test_resident_id_with_x_check_digit_in_either_case() -> None:
    first17 = next(
        f"4501021985061{n:04d}"
        for n in range(10_000)
        if ric.calc_check_digit(f"4501021985061{n:04d}0") == "X"
    )
    number = first17 + "X"
    assert validate_id_number(RESIDENT_ID, number.lower()) == number


def test_resident_id_with_wrong_check_digit() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, wrong_last(NANNING_ID))
    assert reason(exc) == "居民身份证号码校验位不正确"
    assert exc.value.field == "id_number"


@pytest.mark.parametrize(
    "first17",
    [
        "45010219900230123",  # 30 February
        "45010218991231123",  # before 1900
        "45010219901301123",  # month 13
    ],
)
def test_resident_id_with_impossible_birth_date(first17: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, with_gb11643_check(first17))
    assert reason(exc) == "居民身份证号码中的出生日期不正确"


def test_resident_id_born_tomorrow_is_refused() -> None:
    tomorrow = (shanghai_now() + timedelta(days=1)).strftime("%Y%m%d")
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, with_gb11643_check(f"450102{tomorrow}123"))
    assert reason(exc) == "居民身份证号码中的出生日期不正确"


def test_resident_id_with_unknown_province() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, with_gb11643_check("99010219900101123"))
    assert reason(exc) == "居民身份证号码的地区码不正确"


@pytest.mark.parametrize("value", ["450102900101123", "4501021990010112", "4501021990010112345"])
def test_resident_id_of_wrong_length(value: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, value)
    assert reason(exc) == "居民身份证号码长度应为18位"


def test_resident_id_with_letters() -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, "4501021990A101123X")
    assert reason(exc).startswith("居民身份证号码包含无效字符")


def test_residence_permit_entered_as_resident_id_is_pointed_to_the_right_type() -> None:
    permit = with_gb11643_check("81000019900101123")
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(RESIDENT_ID, permit)
    assert "港澳台居民居住证" in reason(exc)


# ----------------------------------------------------------------------------- HK / Macao / Taiwan


@pytest.mark.parametrize(
    "value",
    [
        "H12345678",  # 港澳居民来往内地通行证 (Hong Kong)
        "M12345678",  # (Macao)
        "H1234567890",  # the older cards
        "12345678",  # 台湾居民来往大陆通行证
        "h12345678",
    ],
)
def test_hk_macao_taiwan_travel_permits(value: str) -> None:
    assert validate_id_number(HK_MACAO_TW_PERMIT, value) == value.upper()


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_hk_macao_taiwan_residence_permits(prefix: str) -> None:
    permit = with_gb11643_check(f"{prefix}19900101123")
    assert validate_id_number(HK_MACAO_TW_PERMIT, permit) == permit
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(HK_MACAO_TW_PERMIT, wrong_last(permit))
    assert reason(exc) == "港澳台居民居住证号码校验位不正确"


@pytest.mark.parametrize("value", ["X12345678", "H1234567", "H123456789", "1234567", NANNING_ID, ""])
def test_bad_hk_macao_taiwan_numbers(value: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(HK_MACAO_TW_PERMIT, value)
    assert reason(exc).startswith("港澳台居民证件号码格式不正确") or reason(exc) == "请填写港澳台居民证件号码"


# ----------------------------------------------------------------------------- foreign permanent residence


def test_old_foreign_permanent_residence_number() -> None:
    assert validate_id_number(FOREIGN_PERMANENT_RESIDENCE, "usa110086061234") == "USA110086061234"


def test_new_foreign_permanent_residence_number() -> None:
    # 9 + issuing province 45 + nationality 840 + born 1985-03-15 + sequence 001 + check digit
    number = with_gb11643_check("94584019850315001")
    assert validate_id_number(FOREIGN_PERMANENT_RESIDENCE, number) == number
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(FOREIGN_PERMANENT_RESIDENCE, wrong_last(number))
    assert reason(exc) == "外国人永久居留身份证号码校验位不正确"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("US1110086061234", "外国人永久居留身份证号码格式不正确"),  # two letters only
        ("USA1100860612345", "外国人永久居留身份证号码长度应为15位或18位"),
        (with_gb11643_check("84584019850315001"), "外国人永久居留身份证号码格式不正确"),  # must start with 9
        ("", "请填写外国人永久居留身份证号码"),
    ],
)
def test_bad_foreign_permanent_residence_numbers(value: str, message: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number(FOREIGN_PERMANENT_RESIDENCE, value)
    assert reason(exc).startswith(message)


def test_unknown_id_type() -> None:
    assert set(ID_TYPES) == {RESIDENT_ID, HK_MACAO_TW_PERMIT, FOREIGN_PERMANENT_RESIDENCE}
    with pytest.raises(InvalidNumber) as exc:
        validate_id_number("passport", "E12345678")
    assert exc.value.field == "id_type"
    assert reason(exc) == "证件类型不正确"
