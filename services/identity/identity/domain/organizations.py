"""Rules of organisations, agents and bank accounts: pure functions, no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from common.idnumbers import InvalidNumber, validate_id_number, validate_uscc
from common.rules import Refusal

# Encryption contexts of the ID numbers at rest (a token copied to another column won't decrypt).
LEGAL_REP_ID_CONTEXT = "identity.organizations.legal_rep_id"
AGENT_ID_CONTEXT = "identity.users.id_number"

# --- field errors (a 422 names every bad field at once) ------------------------------------------


def field_error(said: InvalidNumber | Refusal) -> dict[str, str]:
    """One entry of the 422's ``errors[]``: a number's error, or a field check's refusal (its
    ``field`` fact and its words)."""
    if isinstance(said, Refusal):
        return {"field": said.facts["field"], "message": said.detail or ""}
    return {"field": said.field, "message": said.message}


def errors_detail(errors: list[dict[str, str]]) -> str:
    """The detail of a 422 listing field errors whose messages already name their field."""
    detail = errors[0]["message"]
    return detail + (f"（共 {len(errors)} 处错误）" if len(errors) > 1 else "")


# --- certification -----------------------------------------------------------------------------

AGREEMENT_REQUIRED = "请阅读并勾选同意《统一认证平台认证服务协议》"


@dataclass(frozen=True)
class CertificationNumbers:
    uscc: str
    legal_rep_id_number: str


def certification_errors(
    *, agreed: bool, uscc: str, id_type: str, id_number: str
) -> tuple[CertificationNumbers | None, list[dict[str, str]]]:
    """The certification's numbers in stored form, or every field error at once."""
    errors: list[dict[str, str]] = []
    if not agreed:
        errors.append({"field": "agreed", "message": AGREEMENT_REQUIRED})
    stored_uscc = stored_id = ""
    try:
        stored_uscc = validate_uscc(uscc, field="uscc")
    except InvalidNumber as exc:
        errors.append(field_error(exc))
    try:
        stored_id = validate_id_number(id_type, id_number, field="legal_rep_id_number")
    except InvalidNumber as exc:
        errors.append(field_error(exc))
    if errors:
        return None, errors
    return CertificationNumbers(stored_uscc, stored_id), []


# --- bank account (支付认证) ----------------------------------------------------------------------

ACCOUNT_NUMBER_MIN, ACCOUNT_NUMBER_MAX = 8, 30
_ACCOUNT_SEPARATORS = re.compile(r"[\s\-]")


def comparable_name(name: str) -> str:
    """A name as people mean it, the form two names are compared in.

    The rule (银行开户名 = 认证的企业名称): the bank prints a name as its systems keep it and
    people type it as their keyboard gives it, so the comparison ignores what differs only in
    typing and nothing else:

    - full-width and half-width forms are one (Unicode NFKC): “广西某某（南宁）有限公司” and
      “广西某某(南宁)有限公司” are the same name, as are full-width letters and digits;
    - whitespace is ignored, around the name (a space typed before or after it) and inside it
      (a space between two characters, U+3000 the ideographic space included);
    - every other character counts: a different character, an extra or missing bracket or
      a different bracket kind (【】 is not （）) is a different name.
    """
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


def same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and comparable_name(a) == comparable_name(b)


def normalize_account_number(value: str) -> str:
    """Digits as the bank prints them, without the spaces or dashes people type between groups."""
    return _ACCOUNT_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))


def account_number_refusal(number: str) -> Refusal | None:
    """A ``validation_error`` of ``account_number`` unless it is 8–30 ASCII digits."""
    if not number.isascii() or not number.isdigit():
        return Refusal("validation_error", detail="银行账号只能包含数字", field="account_number")
    if not ACCOUNT_NUMBER_MIN <= len(number) <= ACCOUNT_NUMBER_MAX:
        return Refusal(
            "validation_error",
            detail=f"银行账号应为 {ACCOUNT_NUMBER_MIN} 至 {ACCOUNT_NUMBER_MAX} 位数字",
            field="account_number",
        )
    return None


def account_name_refusal(account_name: str, certified_name: str) -> Refusal | None:
    """Payouts and refunds go only to the enterprise's own account: the account's name must
    be the certified name, compared as :func:`comparable_name` says (brackets of either width
    and surrounding or inner spaces aside); else a ``validation_error`` of ``account_name``."""
    if same_name(account_name, certified_name):
        return None
    return Refusal(
        "validation_error",
        detail=f"银行开户名须与认证的企业名称“{certified_name}”一致（服务券相关款项只能转入本单位账户）",
        field="account_name",
    )


# --- agents (经办人) ------------------------------------------------------------------------------


def agent_phone_refusal(phone: str, owner_phone: str) -> Refusal | None:
    """The agent is another person than the owner: a ``validation_error`` of ``phone`` for
    the owner's own phone."""
    if phone == owner_phone:
        return Refusal(
            "validation_error", detail="经办人手机号不能与当前账号（法人）手机号相同", field="phone"
        )
    return None
