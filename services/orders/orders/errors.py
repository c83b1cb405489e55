"""Every problem orders answers: one factory per stable code (one code, one text)."""

from __future__ import annotations

from common.errors import Problem
from common.rules import Refusal
from orders.domain import STATUS_LABELS, Status, Step

STEP_LABELS: dict[Step, str] = {
    Step.CANCEL: "取消订单",
    Step.PAY: "支付",
    Step.EVALUATE: "评价",
    Step.ACCEPT: "接单",
    Step.REJECT: "拒绝接单",
    Step.START_SERVICE: "开始服务",
    Step.COMPLETE_SERVICE: "完成服务",
}


def order_not_found() -> Problem:
    return Problem(404, "order_not_found", "订单不存在或无权查看")


def product_not_found() -> Problem:
    return Problem(404, "product_not_found", "服务产品不存在或已下架")


def product_not_listed() -> Problem:
    return Problem(409, "product_not_listed", "该服务产品未上架，暂不能申请服务")


def provider_suspended() -> Problem:
    return Problem(409, "provider_suspended", "该服务机构已被平台暂停服务，暂不能申请其服务产品")


def own_product() -> Problem:
    return Problem(409, "own_product", "不能申请本单位发布的服务产品")


def no_usable_voucher() -> Problem:
    return Problem(
        409,
        "no_usable_voucher",
        "贵单位暂无可用于该服务产品的服务券（或余额不足），可取消勾选使用服务券后提交订单",
    )


def reason_required() -> Problem:
    return Problem(
        422,
        "reason_required",
        "拒绝接单原因：不能为空",
        errors=[{"field": "reason", "message": "不能为空"}],
    )


def from_refusal(refusal: Refusal) -> Problem:
    """A step the order's state does not allow (``domain.decide``'s refusal, whose facts are
    the ``state`` and the ``step``): 409 naming the current state."""
    state = STATUS_LABELS[Status(refusal.state)]
    what = STEP_LABELS.get(Step(refusal.step), str(refusal.step))
    match refusal.code:
        case "cancellation_pending":
            detail = "已提交取消申请，正在等待合同作废或终止的结果"
        case "order_already_paid":
            detail = f"订单当前状态为「{state}」且已有付款，不能取消订单；如有纠纷请联系平台"
        case "termination_pending":
            detail = f"该订单的合同终止处理中，暂不能{what}，请等待处理结果"
        case "already_evaluated":
            detail = "该订单已评价，不能重复评价"
        case "forbidden_actor":
            return Problem(403, "forbidden_actor", f"您无权对该订单执行「{what}」")
        case _:
            detail = f"订单当前状态为「{state}」，不能{what}"
    return Problem(409, refusal.code, detail, status_label=state, order_status=str(refusal.state))


def bank_account_required() -> Problem:
    return Problem(
        409,
        "bank_account_required",
        "贵单位尚未完成支付认证（收款账户），企业将无从付款；请先在账户设置中完成支付认证后再接单",
    )
