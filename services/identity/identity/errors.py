"""Every problem identity answers: one factory per stable code, so one code has one text.

Routes, dependencies and services raise ``errors.<code>()``; a client can show ``detail``
as it is. Validation errors of request bodies are made by FastAPI (422 ``validation_error``)
and by :func:`invalid` for the rules a schema cannot express. A rule of ``identity.domain``
says no with a :class:`~common.rules.Refusal` in its own words (``detail``); the service turns
it into its problem with :func:`from_refusal`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.errors import Problem

# one status for the code wherever the result is presented (403: common.idv for the other services)
from common.errors import verification_expired as verification_expired
from common.rules import Refusal

# --- sign-in, captcha, SMS codes ---------------------------------------------------------------


def captcha_invalid() -> Problem:
    return Problem(400, "captcha_invalid", "图形验证码错误或已失效，请刷新后重试")


def sms_code_invalid(attempts_left: int | None = None) -> Problem:
    if attempts_left is None:
        return Problem(400, "sms_code_invalid", "短信验证码错误或已过期，请重新获取")
    return Problem(
        400, "sms_code_invalid", f"短信验证码错误，还可尝试 {attempts_left} 次", attempts_left=attempts_left
    )


def sms_code_locked() -> Problem:
    return Problem(429, "sms_code_locked", "验证码错误次数过多，请重新获取")


def sms_limited(code: str, detail: str, retry_after: int) -> Problem:
    """The resend interval or a daily cap (``domain.sms_refusal`` says which, and its text;
    :func:`from_refusal` makes it)."""
    return Problem(429, code, detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


def phone_registered() -> Problem:
    return Problem(409, "phone_registered", "该手机号已注册，请直接登录")


def phone_not_registered() -> Problem:
    return Problem(404, "phone_not_registered", "该手机号尚未注册，请先注册")


def phone_taken() -> Problem:
    return Problem(409, "phone_taken", "该手机号已被其他账号使用，请更换经办人手机号")


def invalid_credentials() -> Problem:
    return Problem(401, "invalid_credentials", "手机号或密码错误")


def login_locked() -> Problem:
    return Problem(429, "login_locked", "密码错误次数过多，账号已临时锁定，请稍后再试或使用验证码登录")


def old_password_incorrect() -> Problem:
    return Problem(400, "old_password_incorrect", "原密码不正确")


def weak_password(why: str, field: str = "new_password") -> Problem:
    return Problem(422, "weak_password", why, errors=[{"field": field, "message": why}])


def refresh_token_invalid() -> Problem:
    return Problem(401, "refresh_token_invalid", "登录已失效，请重新登录")


def refresh_token_reused() -> Problem:
    return Problem(401, "refresh_token_reused", "登录凭证已被使用，为保障账号安全已退出登录，请重新登录")


def refresh_token_expired() -> Problem:
    return Problem(401, "refresh_token_expired", "登录已过期，请重新登录")


def account_gone() -> Problem:
    return Problem(401, "unauthenticated", "账号不存在或已停用，请重新登录")


# --- organisations, agents, bank accounts --------------------------------------------------------


def organization_not_found() -> Problem:
    return Problem(404, "organization_not_found", "组织不存在")


def owner_required() -> Problem:
    return Problem(403, "owner_required", "仅企业账号的法人（注册人）可以进行此操作")


def organization_suspended(reason: str | None) -> Problem:
    return Problem(
        403,
        "organization_suspended",
        "贵单位账号已被平台暂停使用，暂不能办理新的业务，如有疑问请联系平台",
        reason=reason,
    )


def certification_required() -> Problem:
    return Problem(403, "certification_required", "请先完成企业信息认证后再操作")


def already_certified() -> Problem:
    return Problem(409, "already_certified", "贵单位已完成企业信息认证，无需重复认证")


def uscc_taken() -> Problem:
    return Problem(409, "uscc_taken", "该统一社会信用代码已被其他账号认证，如有疑问请联系平台申诉")


def enterprise_verification_failed(
    reason: str, fields: tuple[str, ...] = ("name", "uscc", "legal_rep_name")
) -> Problem:
    """The registry's refusal, on the fields it concerns (the one that differs when the
    registry says which; all three when it does not)."""
    return Problem(
        422,
        "enterprise_verification_failed",
        f"企业信息核验未通过：{reason}",
        reason=reason,
        errors=[{"field": f, "message": reason} for f in fields],
    )


def agent_not_set() -> Problem:
    return Problem(404, "agent_not_set", "尚未指定经办人")


def bank_account_not_set() -> Problem:
    return Problem(404, "bank_account_not_set", "尚未填写银行账户信息，请先完成支付认证")


def region_not_found(field: str, value: str) -> Problem:
    """A lookup's region filter that names no region of the reference data."""
    message = f"行政区划“{value}”不存在，请输入行政区划代码或全称（如：450100 或 广西壮族自治区南宁市）"
    return Problem(422, "validation_error", message, errors=[{"field": field, "message": message}])


def invalid(errors: list[dict[str, Any]], detail: str) -> Problem:
    """Rules a schema cannot express (check digits, consent), as the usual 422."""
    return Problem(422, "validation_error", detail, errors=errors)


# --- identity verification (人脸认证) -----------------------------------------------------------


def verification_not_found() -> Problem:
    return Problem(404, "verification_not_found", "人脸认证记录不存在或无权查看")


def verification_not_pending() -> Problem:
    return Problem(409, "verification_not_pending", "该人脸认证已有结果，不能再次更改")


# --- files ---------------------------------------------------------------------------------------


def file_not_found() -> Problem:
    return Problem(404, "file_not_found", "文件不存在或无权查看")


def file_too_large(limit: int, shown: str) -> Problem:
    return Problem(413, "file_too_large", f"文件大小不能超过 {shown}", max_bytes=limit)


def empty_file() -> Problem:
    return Problem(
        422,
        "empty_file",
        "文件内容为空，请重新选择文件",
        errors=[{"field": "file", "message": "文件内容为空"}],
    )


def unsupported_file_type() -> Problem:
    return Problem(415, "unsupported_file_type", "仅支持上传 PDF、JPG、PNG 格式的文件")


# --- staff ---------------------------------------------------------------------------------------


def staff_not_found() -> Problem:
    return Problem(404, "staff_not_found", "平台人员账号不存在")


def already_suspended() -> Problem:
    return Problem(409, "already_suspended", "该组织已处于暂停状态")


def not_suspended() -> Problem:
    return Problem(409, "not_suspended", "该组织未被暂停，无需恢复")


def cannot_change_self(why: str) -> Problem:
    return Problem(409, "cannot_change_self", why)


# --- providers of the outside world --------------------------------------------------------------


def sms_unavailable() -> Problem:
    """No SMS provider, or the vendor did not answer after a few tries (outage, timeout, 5xx)."""
    return Problem(503, "sms_unavailable", "短信服务暂不可用，请稍后再试；如持续出现请联系平台")


def sms_rate_limited() -> Problem:
    """The vendor's own limit for this phone (per minute / hour / day)."""
    return Problem(
        429,
        "sms_rate_limited",
        "该手机号接收验证码过于频繁，已被短信服务商限制，请稍后再试",
        headers={"Retry-After": "60"},
        retry_after=60,
    )


def sms_quota_exceeded() -> Problem:
    """The platform's SMS account is out of quota or balance (not the user's fault)."""
    return Problem(
        503, "sms_quota_exceeded", "平台短信发送量已达上限，暂时无法发送验证码，请稍后再试或联系平台"
    )


def sms_phone_invalid() -> Problem:
    return Problem(
        422,
        "sms_phone_invalid",
        "该手机号无法接收短信，请核对号码是否正确",
        errors=[{"field": "phone", "message": "手机号无法接收短信"}],
    )


def sms_phone_blocked() -> Problem:
    return Problem(
        422,
        "sms_phone_blocked",
        "该手机号已拒收短信或被运营商拦截，请更换手机号或联系运营商",
        errors=[{"field": "phone", "message": "手机号已拒收短信"}],
    )


def sms_misconfigured() -> Problem:
    """The vendor refuses the platform's signature, template or credentials."""
    return Problem(
        503, "sms_misconfigured", "短信服务配置有误（签名、模板或密钥），暂时无法发送验证码，请联系平台"
    )


def enterprise_verification_unavailable() -> Problem:
    return Problem(503, "enterprise_verification_unavailable", "企业信息核验服务暂不可用，请稍后再试")


def enterprise_verification_misconfigured() -> Problem:
    """The vendor refuses the platform's key, signature, IP or subscription."""
    return Problem(
        503,
        "enterprise_verification_misconfigured",
        "企业信息核验服务配置有误，暂时无法完成企业信息认证，请联系平台",
    )


def enterprise_verification_quota_exceeded() -> Problem:
    """The platform's account with the vendor is out of balance or over its limits."""
    return Problem(
        503,
        "enterprise_verification_quota_exceeded",
        "企业信息核验服务调用量已达上限，暂时无法完成企业信息认证，请稍后再试或联系平台",
    )


def face_verification_unavailable() -> Problem:
    return Problem(503, "face_verification_unavailable", "人脸认证服务暂不可用，请稍后再试")


def face_verification_misconfigured() -> Problem:
    """The vendor refuses the platform's credentials, rule or account."""
    return Problem(
        503, "face_verification_misconfigured", "人脸认证服务配置有误，暂时无法进行人脸认证，请联系平台"
    )


def face_subject_unknown() -> Problem:
    return Problem(
        409,
        "face_subject_unknown",
        "缺少本人的姓名和证件号码，无法进行人脸认证；经办人请由企业法人重新指定，法人请联系平台",
    )


# --- the rules' refusals -------------------------------------------------------------------------


def _field_refused(refusal: Refusal) -> Problem:
    detail = refusal.detail or ""
    return invalid([{"field": refusal.facts["field"], "message": detail}], detail)


_BY_CODE: dict[str, Callable[[Refusal], Problem]] = {
    "validation_error": _field_refused,
    "weak_password": lambda r: weak_password(r.detail or "", field=r.facts["field"]),
    "cannot_change_self": lambda r: cannot_change_self(r.detail or ""),
    "sms_too_frequent": lambda r: sms_limited(r.code, r.detail or "", r.facts["retry_after"]),
    "sms_daily_limit": lambda r: sms_limited(r.code, r.detail or "", r.facts["retry_after"]),
}


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal: the rule's words are its detail (and
    the message of its ``field``, where it names one)."""
    return _BY_CODE[refusal.code](refusal)
