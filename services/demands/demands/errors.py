"""Every problem demands answers: one factory per stable code, one Chinese text per code."""

from __future__ import annotations

from collections.abc import Callable

from common.errors import Problem
from common.rules import Refusal


def _field(status: int, code: str, field: str, message: str) -> Problem:
    return Problem(status, code, f"{message}（{field}）", errors=[{"field": field, "message": message}])


def demand_not_found() -> Problem:
    return Problem(404, "demand_not_found", "需求不存在或尚未发布")


def message_not_found() -> Problem:
    return Problem(404, "message_not_found", "留言不存在")


def notice_not_found() -> Problem:
    return Problem(404, "notice_not_found", "公告不存在")


def notification_not_found() -> Problem:
    return Problem(404, "notification_not_found", "通知不存在")


def attachment_not_found() -> Problem:
    return Problem(404, "attachment_not_found", "该公告没有附件")


def unknown_category() -> Problem:
    return _field(422, "unknown_category", "category", "需求分类不存在，请从九个服务分类中选择")


def budget_amount_required() -> Problem:
    return _field(422, "budget_amount_required", "budget_fen", "选择“我有明确预算”时须填写大于 0 的预算金额")


def budget_amount_not_expected() -> Problem:
    return _field(422, "budget_amount_not_expected", "budget_fen", "选择“需要服务商报价”时不填写预算金额")


def content_too_long() -> Problem:
    return _field(422, "content_too_long", "content", "需求内容不能超过 300 个字")


def demand_not_editable() -> Problem:
    return Problem(
        409, "demand_not_editable", "只有待处理或退回修改的需求可以修改；已发布的需求请关闭后重新发布"
    )


def demand_closed() -> Problem:
    return Problem(409, "demand_closed", "该需求已关闭")


def demand_not_reviewable() -> Problem:
    return Problem(409, "demand_not_reviewable", "该需求已审核，不能重复审核")


def reason_required() -> Problem:
    return _field(422, "reason_required", "reason", "退回修改或审核不通过须填写原因")


def own_demand() -> Problem:
    return Problem(409, "own_demand", "不能对接本单位发布的需求")


def already_responded() -> Problem:
    return Problem(409, "already_responded", "贵单位已申请对接该需求，请等待需求方与您联系")


def message_empty() -> Problem:
    return _field(422, "message_empty", "content", "留言内容不能为空")


def message_too_long() -> Problem:
    return _field(422, "message_too_long", "content", "留言内容不能超过 500 个字")


def message_closed() -> Problem:
    return Problem(409, "message_closed", "该留言已关闭，不能再回复或关闭")


def notice_empty() -> Problem:
    message = "须有正文或 PDF 附件"
    return Problem(
        422,
        "notice_empty",
        "公告须有正文或 PDF 附件",
        errors=[
            {"field": "body_html", "message": message},
            {"field": "attachment_file_id", "message": message},
        ],
    )


_BY_CODE: dict[str, Callable[[], Problem]] = {
    "demand_not_found": demand_not_found,
    "unknown_category": unknown_category,
    "budget_amount_required": budget_amount_required,
    "budget_amount_not_expected": budget_amount_not_expected,
    "content_too_long": content_too_long,
    "demand_not_editable": demand_not_editable,
    "demand_closed": demand_closed,
    "demand_not_reviewable": demand_not_reviewable,
    "reason_required": reason_required,
    "own_demand": own_demand,
    "already_responded": already_responded,
    "message_empty": message_empty,
    "message_too_long": message_too_long,
    "message_closed": message_closed,
    "notice_empty": notice_empty,
}


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal."""
    return _BY_CODE[refusal.code]()
