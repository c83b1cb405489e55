"""Every problem quota answers: one factory per stable code, so one code never has two texts."""

from __future__ import annotations

from datetime import date

from common.errors import Problem
from common.numbers import format_date_cn
from common.rules import Refusal


def no_campaign() -> Problem:
    return Problem(404, "no_campaign", "当前没有进行中的服务券活动")


def campaign_invalid(field: str, message: str) -> Problem:
    return Problem(
        422, "campaign_invalid", f"活动设置有误：{message}", errors=[{"field": field, "message": message}]
    )


def unknown_voucher_type() -> Problem:
    return Problem(
        422,
        "unknown_voucher_type",
        "服务券类型不正确",
        errors=[{"field": "voucher_type", "message": "服务券类型不正确"}],
    )


def voucher_type_closed() -> Problem:
    return Problem(409, "voucher_type_not_offered", "本年度活动未开放该类型的服务券")


def special_fields_required() -> Problem:
    return Problem(
        422,
        "special_fields_required",
        "专项券申请须填写申领额度、计算依据金额并上传合同凭证",
        errors=[{"field": "requested_fen", "message": "不能为空"}],
    )


_SPECIAL_TEXTS = {
    "amount_not_positive": ("requested_fen", "申领额度和计算依据金额须大于0"),
    "basis_insufficient": ("basis_fen", "申领额度超过了计算依据金额可给予的比例"),
    "over_yearly_cap": ("requested_fen", "申领额度超过了本年度该类型服务券剩余可申领额度"),
}


def special_request(code: str) -> Problem:
    field, message = _SPECIAL_TEXTS[code]
    return Problem(422, code, message, errors=[{"field": field, "message": message}])


def general_already_applied() -> Problem:
    return Problem(409, "already_applied", "贵单位本年度已申请通用券，请勿重复申请")


def application_not_found() -> Problem:
    return Problem(404, "application_not_found", "配额申请不存在或无权查看")


def application_decided() -> Problem:
    return Problem(409, "application_already_decided", "该配额申请已审核，不能再次审核")


_APPROVAL_TEXTS = {
    "amount_not_positive": "核定额度须大于0",
    "approved_over_request": "核定额度不能超过企业申领的额度",
    "over_yearly_cap": "核定额度超过了该企业本年度该类型服务券剩余可用额度",
}


def approval_amount(code: str) -> Problem:
    message = _APPROVAL_TEXTS[code]
    return Problem(422, code, message, errors=[{"field": "approved_fen", "message": message}])


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal: the amounts of a special-type request
    (``domain.applications.check_special_request``) or the approved amount
    (``check_approved_amount``, whose refusals name the field approved_fen)."""
    if refusal.field == "approved_fen":
        return approval_amount(refusal.code)
    return special_request(refusal.code)


def voucher_window_closed(valid_to: date) -> Problem:
    return Problem(
        409,
        "voucher_window_closed",
        f"该类服务券的配额有效期已于{format_date_cn(valid_to)}结束，不能再审核通过，请驳回该申请",
        valid_to=valid_to.isoformat(),
    )


def approved_amount_required() -> Problem:
    return Problem(
        422,
        "approved_fen_required",
        "专项券审核通过须填写核定额度",
        errors=[{"field": "approved_fen", "message": "不能为空"}],
    )


def reason_required() -> Problem:
    return Problem(
        422,
        "reason_required",
        "该企业不在任何企业划型名单中，按基础档核定须填写理由",
        errors=[{"field": "reason", "message": "不能为空"}],
    )


def voucher_not_found() -> Problem:
    return Problem(404, "voucher_not_found", "服务券不存在或无权查看")


def product_not_found() -> Problem:
    return Problem(404, "product_not_found", "服务产品不存在")


def wrong_voucher_type() -> Problem:
    return Problem(
        422,
        "wrong_voucher_type",
        "该服务券不能用于此类服务产品",
        errors=[{"field": "product_id", "message": "该服务券不能用于此类服务产品"}],
    )


def unknown_category() -> Problem:
    return Problem(
        422, "unknown_category", "未知的服务类别", errors=[{"field": "category", "message": "未知的服务类别"}]
    )


def amount_not_positive(field: str = "amount_fen") -> Problem:
    return Problem(
        422, "amount_not_positive", "金额须大于0", errors=[{"field": field, "message": "金额须大于0"}]
    )


def cap_below_usage(used_fen: int) -> Problem:
    return Problem(
        409, "cap_below_usage", "新的补贴上限低于该服务机构本年度已占用的补贴额度", in_use_fen=used_fen
    )


def import_unreadable(message: str) -> Problem:
    return Problem(
        422,
        "import_unreadable",
        f"无法读取导入文件：{message}",
        errors=[{"field": "file", "message": message}],
    )
