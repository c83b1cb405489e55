"""Validation of USCCs (GB 32100) and personal ID numbers, with a Chinese reason a user can act on.

Each validator returns the number in its stored form (no spaces or dashes, full-width characters
made ASCII, letters uppercase), so that equality lookups (the blind index of an encrypted ID
number, the one-USCC-one-organisation rule) compare like with like. A bad number raises
:class:`InvalidNumber`, which the API layer turns into a 422 naming the field and the reason.

Check digits come from python-stdnum (``stdnum.cn.uscc``, ``stdnum.cn.ric``). Its ``validate``
functions are not used as they are: ``uscc.validate`` insists on digits in the first eight places,
which refuses real codes whose registering authority is a letter (N... for 农村集体经济组织); and
``ric.validate`` looks the county up in a bundled table, which would refuse people whose county
code is missing from or newer than that table. A wrong county code is not something a user can
fix, so we check what GB 11643 lets a machine check: the province, the birth date and the check
digit.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from zoneinfo import ZoneInfo

from stdnum import exceptions as stdnum_exceptions
from stdnum.cn import ric, uscc

RESIDENT_ID = "resident_id"
HK_MACAO_TW_PERMIT = "hk_macao_tw_permit"
FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"

ID_TYPE_LABELS: dict[str, str] = {
    RESIDENT_ID: "居民身份证",
    HK_MACAO_TW_PERMIT: "港澳台居民来往内地通行证/居住证",
    FOREIGN_PERMANENT_RESIDENCE: "外国人永久居留身份证",
}
ID_TYPES = tuple(ID_TYPE_LABELS)

# Province-level codes of GB/T 2260 for which resident ID numbers are issued (71 = Taiwan is in
# the table but no resident ID numbers begin with it). 81/82/83 begin the residence permits of
# Hong Kong, Macao and Taiwan residents, which have an ID type of their own.
_MAINLAND_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65".split()
)
_RESIDENCE_PERMIT_PREFIXES = ("810000", "820000", "830000")

_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")  # GB 32100: no I, O, Z, S, V
_SEPARATORS = re.compile(r"[\s\-]")
_GB11643 = re.compile(r"\d{17}[\dX]")
_HK_MACAO_TRAVEL_PERMIT = re.compile(r"[HM](?:\d{8}|\d{10})")  # 回乡证: since 2013 / before
_TAIWAN_TRAVEL_PERMIT = re.compile(r"\d{8}")  # 台胞证 (since 2015)
_FOREIGN_OLD = re.compile(r"[A-Z]{3}\d{12}")  # nationality + province + birth yymmdd + seq + check
_FOREIGN_NEW = re.compile(r"9\d{16}[\dX]")  # 2023 format, GB 11643 layout and check digit

_SHANGHAI = ZoneInfo("Asia/Shanghai")
_EARLIEST_BIRTH = date(1900, 1, 1)


class InvalidNumber(ValueError):
    """A number that fails validation: ``field`` names the input, ``message`` says why in Chinese."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize(value: str) -> str:
    """Stored form: full-width to ASCII (NFKC), no whitespace or dashes, uppercase."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def validate_uscc(value: str, *, field: str = "uscc") -> str:
    """A 统一社会信用代码 in its stored form, or :class:`InvalidNumber` saying why it is wrong."""
    label = "统一社会信用代码"
    number = normalize(value or "")
    if not number:
        raise InvalidNumber(field, f"请填写{label}")
    if len(number) != 18:
        raise InvalidNumber(field, f"{label}长度应为18位")
    bad = next((c for c in number if c not in _USCC_ALPHABET), None)
    if bad is not None:
        hint = "（代码中不使用字母I、O、Z、S、V）" if bad in "IOZSV" else ""
        raise InvalidNumber(field, f"{label}包含无效字符“{bad}”{hint}")
    if not number[2:8].isdigit():  # the registering region (行政区划码) is six digits
        raise InvalidNumber(field, f"{label}包含无效字符：第3至8位应为数字")
    if number[0] == "0" or number[1] == "0":
        raise InvalidNumber(field, f"{label}包含无效字符：第1、2位不能为0")
    if uscc.calc_check_digit(number[:17]) != number[17]:
        raise InvalidNumber(field, f"{label}校验位不正确")
    return number


def validate_id_number(id_type: str, value: str, *, field: str = "id_number") -> str:
    """A personal ID number of ``id_type`` in its stored form, or :class:`InvalidNumber`.

    - ``resident_id``: 居民身份证 (GB 11643): 18 characters, a mainland province, a real birth
      date not in the future, and the check digit;
    - ``hk_macao_tw_permit``: 港澳居民来往内地通行证 ``H``/``M`` + 8 digits (or + 10, the older
      cards), 台湾居民来往大陆通行证 8 digits, or a 港澳台居民居住证 (18 characters beginning
      810000/820000/830000, checked like a resident ID);
    - ``foreign_permanent_residence``: 外国人永久居留身份证, the old 15 characters (3 letters +
      12 digits; its check digit is not published, so only the shape is checked) or the 2023
      18-character number beginning with 9, whose birth date and check digit are checked.
    """
    if id_type not in ID_TYPE_LABELS:
        raise InvalidNumber("id_type", "证件类型不正确")
    number = normalize(value or "")
    if id_type == RESIDENT_ID:
        return _validate_resident_id(number, field)
    if id_type == HK_MACAO_TW_PERMIT:
        return _validate_hk_macao_tw(number, field)
    return _validate_foreign_permanent_residence(number, field)


def _validate_resident_id(number: str, field: str) -> str:
    label = "居民身份证号码"
    if not number:
        raise InvalidNumber(field, f"请填写{label}")
    if len(number) != 18:
        raise InvalidNumber(field, f"{label}长度应为18位")
    if not _GB11643.fullmatch(number):
        raise InvalidNumber(field, f"{label}包含无效字符：前17位应为数字，最后一位为数字或X")
    if number.startswith(_RESIDENCE_PERMIT_PREFIXES):
        raise InvalidNumber(
            field, "该号码是港澳台居民居住证号码，请选择证件类型“港澳台居民来往内地通行证/居住证”"
        )
    if number[:2] not in _MAINLAND_PROVINCES:
        raise InvalidNumber(field, f"{label}的地区码不正确")
    _check_gb11643(number, field, label)
    return number


def _validate_hk_macao_tw(number: str, field: str) -> str:
    if not number:
        raise InvalidNumber(field, "请填写港澳台居民证件号码")
    if _HK_MACAO_TRAVEL_PERMIT.fullmatch(number) or _TAIWAN_TRAVEL_PERMIT.fullmatch(number):
        return number
    if len(number) == 18 and number.startswith(_RESIDENCE_PERMIT_PREFIXES):
        label = "港澳台居民居住证号码"
        if not _GB11643.fullmatch(number):
            raise InvalidNumber(field, f"{label}包含无效字符：前17位应为数字，最后一位为数字或X")
        _check_gb11643(number, field, label)
        return number
    raise InvalidNumber(
        field,
        "港澳台居民证件号码格式不正确：港澳居民来往内地通行证为H或M加8位数字，"
        "台湾居民来往大陆通行证为8位数字，港澳台居民居住证为810000、820000或830000开头的18位号码",
    )


def _validate_foreign_permanent_residence(number: str, field: str) -> str:
    label = "外国人永久居留身份证号码"
    if not number:
        raise InvalidNumber(field, f"请填写{label}")
    if _FOREIGN_OLD.fullmatch(number):
        return number
    if _FOREIGN_NEW.fullmatch(number):
        _check_gb11643(number, field, label)
        return number
    if len(number) not in (15, 18):
        raise InvalidNumber(field, f"{label}长度应为15位或18位")
    raise InvalidNumber(field, f"{label}格式不正确：应为3位字母加12位数字，或以9开头的18位号码")


def _check_gb11643(number: str, field: str, label: str) -> None:
    """The birth date (characters 7-14) and the ISO 7064 MOD 11-2 check digit of GB 11643."""
    try:
        born = ric.get_birth_date(number)
    except stdnum_exceptions.ValidationError:
        raise InvalidNumber(field, f"{label}中的出生日期不正确") from None
    if not _EARLIEST_BIRTH <= born <= datetime.now(_SHANGHAI).date():
        raise InvalidNumber(field, f"{label}中的出生日期不正确")
    if ric.calc_check_digit(number) != number[-1]:
        raise InvalidNumber(field, f"{label}校验位不正确")
