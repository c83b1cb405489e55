"""Rules of organisations, agents, bank accounts, face checks, files and staff accounts:
pure functions, no I/O (the routers and ``org_service`` do the reading and writing)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from common.idnumbers import InvalidNumber, validate_id_number, validate_uscc
from common.numbers import SHANGHAI
from identity.domain import STAFF_ROLES

# Encryption contexts of the ID numbers at rest (a token copied to another column won't decrypt).
LEGAL_REP_ID_CONTEXT = "identity.organizations.legal_rep_id"
AGENT_ID_CONTEXT = "identity.users.id_number"

# --- field errors (a 422 names every bad field at once) ------------------------------------------


def field_error(exc: InvalidNumber) -> dict[str, str]:
    return {"field": exc.field, "message": exc.message}


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
    """A name as people mean it: full-width and half-width alike (（）and ()), no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


def same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and comparable_name(a) == comparable_name(b)


def normalize_account_number(value: str) -> str:
    """Digits as the bank prints them, without the spaces or dashes people type between groups."""
    return _ACCOUNT_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))


def account_number_problem(number: str) -> str | None:
    if not number.isascii() or not number.isdigit():
        return "银行账号只能包含数字"
    if not ACCOUNT_NUMBER_MIN <= len(number) <= ACCOUNT_NUMBER_MAX:
        return f"银行账号应为 {ACCOUNT_NUMBER_MIN} 至 {ACCOUNT_NUMBER_MAX} 位数字"
    return None


def account_name_problem(account_name: str, certified_name: str) -> str | None:
    """Payouts and refunds go only to the enterprise's own account: the names must match."""
    if same_name(account_name, certified_name):
        return None
    return f"银行开户名须与认证的企业名称“{certified_name}”一致（服务券相关款项只能转入本单位账户）"


# --- agents (经办人) ------------------------------------------------------------------------------


def agent_phone_problem(phone: str, owner_phone: str) -> str | None:
    if phone == owner_phone:
        return "经办人手机号不能与当前账号（法人）手机号相同"
    return None


# --- identity verification (人脸认证) -------------------------------------------------------------


def verification_token_life(
    *, state: str, decided_at: datetime | None, now: datetime, ttl_seconds: int
) -> int | None:
    """Seconds a passed check's token may still live (its TTL runs from the moment it passed);
    ``None`` when there is no token to give (pending, failed); 0 when it has expired."""
    if state != "passed" or decided_at is None:
        return None
    left = ttl_seconds - (now - decided_at).total_seconds()
    return max(0, int(left))


# --- files -------------------------------------------------------------------------------------

MAX_FILE_NAME = 255
_EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
_ALIASES = {"application/pdf": (".pdf",), "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg")}
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# Control (Cc), format (Cf: bidi overrides and isolates, zero-width characters), line and
# paragraph separators, and unassigned code points never belong in a shown file name.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})


def human_size(size: int) -> str:
    """``10 MB``, ``512 KB``: how a size limit is told to a user."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.3g} MB"
    if size >= 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size} B"


def clean_file_name(raw: str | None, content_type: str) -> str:
    """The name to show and offer on download: the last path segment of what the client sent,
    without control or invisible formatting characters (the bidi overrides that make
    ``\u202egnp.exe`` look like "exe.png"), at most 255 characters, and always ending in the
    extension of the type its bytes were judged to be (PNG bytes sent as ``x.html`` are
    ``x.png``)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE)
    name = name.strip().strip(".").strip()
    suffix = _EXTENSIONS.get(content_type, "")
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _EXTENSION.fullmatch(ext):
        if "." + ext.lower() in _ALIASES.get(content_type, ()):
            suffix = "." + ext  # the right extension, kept as the user wrote it (.JPEG)
        name = stem.rstrip(". ")
    return (name or "file")[: MAX_FILE_NAME - len(suffix)] + suffix


def content_disposition(name: str, disposition: str = "inline") -> str:
    """RFC 6266 with an ASCII fallback and the real name as RFC 5987 ``filename*``."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass(frozen=True)
class Reader:
    user_id: str
    role: str
    org_id: str | None


def may_read_file(
    reader: Reader, *, file_org_id: str | None, uploader_id: str, granted_org_ids: set[str]
) -> bool:
    """Members of the owning organisation, the uploader, staff, and organisations a deal
    granted access to (the counterparty)."""
    if reader.role in STAFF_ROLES or reader.user_id == uploader_id:
        return True
    if reader.org_id is None:
        return False
    return reader.org_id == file_org_id or reader.org_id in granted_org_ids


# --- staff accounts ----------------------------------------------------------------------------


def own_change_problem(*, actor_id: str, target_id: str, role: str | None, active: bool | None) -> str | None:
    """An administrator may rename themself but not demote or deactivate themself (the
    platform would risk losing its last administrator, and nobody could undo it)."""
    if actor_id != target_id:
        return None
    if role is not None and role != "administrator":
        return "不能修改自己的角色，请由其他管理员操作"
    if active is False:
        return "不能停用自己的账号，请由其他管理员操作"
    return None


def aware(moment: datetime) -> datetime:
    """A time without an offset is business time (Asia/Shanghai)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def like_pattern(q: str) -> str:
    """``%q%`` for ILIKE with the wildcards a user typed taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
