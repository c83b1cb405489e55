"""Every problem catalog answers: one factory per stable code, so one code has one text."""

from __future__ import annotations

from collections.abc import Callable

from catalog.domain.products import STATUS_LABELS, Action
from common.errors import Problem
from common.rules import Refusal

ACTION_LABELS = {
    Action.SUBMIT: "提交审核",
    Action.APPROVE: "审核通过",
    Action.REJECT: "审核不通过",
    Action.UNLIST: "下架",
    Action.RELIST: "重新上架",
}


def unknown_category(field: str = "category") -> Problem:
    return Problem(
        422,
        "unknown_category",
        "服务类型不存在，请从平台的九类服务中选择",
        errors=[{"field": field, "message": "服务类型不存在"}],
    )


def price_above_market() -> Problem:
    return Problem(
        422,
        "price_above_market",
        "平台销售价不能高于市场指导价",
        errors=[{"field": "platform_price_fen", "message": "不能高于市场指导价"}],
    )


def price_not_positive() -> Problem:
    return Problem(
        422,
        "price_not_positive",
        "价格必须大于 0",
        errors=[{"field": "platform_price_fen", "message": "必须大于 0"}],
    )


def max_subsidy_negative() -> Problem:
    return Problem(
        422,
        "max_subsidy_negative",
        "最高补贴不能小于 0",
        errors=[{"field": "max_subsidy_fen", "message": "不能小于 0"}],
    )


def reason_required() -> Problem:
    return Problem(
        422, "reason_required", "请填写不通过的原因", errors=[{"field": "reason", "message": "不能为空"}]
    )


def provider_required() -> Problem:
    return Problem(403, "provider_required", "请先成为平台服务机构后再操作")


def provider_not_approved() -> Problem:
    return Problem(403, "provider_not_approved", "贵单位尚未通过服务机构入驻审核，暂不能管理服务产品")


def application_not_found() -> Problem:
    return Problem(404, "application_not_found", "入驻申请不存在或无权查看")


def application_pending() -> Problem:
    return Problem(409, "application_pending", "贵单位已有待审核的入驻申请，请等待平台审核")


def already_provider() -> Problem:
    return Problem(409, "already_provider", "贵单位已是平台服务机构，无需再次申请")


def application_not_pending() -> Problem:
    return Problem(409, "application_not_pending", "该入驻申请已审核，不能重复处理")


def product_not_found() -> Problem:
    return Problem(404, "product_not_found", "服务产品不存在或已下架")


def provider_not_found() -> Problem:
    return Problem(404, "provider_not_found", "服务机构不存在")


def transition_refused(status_label: str, action_label: str) -> Problem:
    return Problem(409, "product_status_conflict", f"服务产品当前为“{status_label}”，不能{action_label}")


_BY_CODE: dict[str, Callable[[], Problem]] = {
    "price_above_market": price_above_market,
    "price_not_positive": price_not_positive,
    "max_subsidy_negative": max_subsidy_negative,
}


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal."""
    if refusal.code == "product_status_conflict":
        return transition_refused(STATUS_LABELS[refusal.status], ACTION_LABELS[refusal.action])
    return _BY_CODE[refusal.code]()


def price_range_invalid() -> Problem:
    return Problem(
        422,
        "price_range_invalid",
        "最低价格不能高于最高价格",
        errors=[{"field": "min_price_fen", "message": "不能高于最高价格"}],
    )


def provider_bank_account_missing() -> Problem:
    return Problem(
        409,
        "provider_bank_account_missing",
        "该单位尚未完成支付认证（收款账户），企业将无从付款，暂不能审核通过；请通知其完成支付认证后再审核",
    )
