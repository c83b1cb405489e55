"""Every problem payments answers: one factory per stable code, one Chinese text per code."""

from __future__ import annotations

from common.errors import Problem
from common.rules import Refusal


def plan_not_found() -> Problem:
    return Problem(404, "payment_plan_not_found", "该订单暂无支付信息（双方签署合同后生成）")


def remittance_not_found() -> Problem:
    return Problem(404, "remittance_not_found", "汇款记录不存在")


def settlement_not_found() -> Problem:
    return Problem(404, "settlement_not_found", "兑付记录不存在")


def refund_not_found() -> Problem:
    return Problem(404, "refund_not_found", "退款记录不存在")


def contract_not_signed() -> Problem:
    """A transfer recorded for an order with no payment plan: the plan is made when both
    parties sign. Payments knows no order before that, so a made-up order id gets this same
    answer (it tells no one which orders exist)."""
    return Problem(409, "contract_not_signed", "双方签署合同后才能登记汇款，请先完成合同签署")


def not_the_enterprise() -> Problem:
    return Problem(403, "enterprise_of_order_required", "只有该订单的购买企业可以登记汇款")


def enterprise_cannot_confirm() -> Problem:
    return Problem(403, "enterprise_cannot_confirm", "汇款须由收款的服务机构或平台财务核实，企业不能自行确认")


def member_required() -> Problem:
    return Problem(403, "member_required", "请使用企业或服务机构账号查看")


def not_the_provider() -> Problem:
    return Problem(403, "provider_of_order_required", "只有该订单的服务机构可以申请兑付")


def payee_account_missing() -> Problem:
    return Problem(
        409, "payee_account_missing", "服务机构尚未完成支付认证（收款账户），暂不能汇款，请联系服务机构"
    )


def contract_terminated() -> Problem:
    return Problem(409, "contract_terminated", "该订单的合同已终止，不能再办理汇款、核实或兑付")


def termination_pending() -> Problem:
    return Problem(409, "termination_pending", "该订单的合同终止处理中，暂不能汇款或兑付，请等待处理结果")


def plan_closed() -> Problem:
    return Problem(409, "plan_closed", "该订单的支付已关闭（合同已作废），不能再汇款")


def amount_not_positive() -> Problem:
    return Problem(
        422,
        "amount_not_positive",
        "汇款金额须大于 0",
        errors=[{"field": "amount_fen", "message": "须大于 0"}],
    )


def already_fully_paid() -> Problem:
    return Problem(409, "already_fully_paid", "该订单已全部付清，无需再汇款")


def remittance_exceeds_outstanding(room_fen: int) -> Problem:
    from common.money import format_yuan

    return Problem(
        409,
        "remittance_exceeds_outstanding",
        f"汇款金额超出尚需支付的金额（还可登记 {format_yuan(room_fen)} 元，含待核实的汇款）",
        room_fen=room_fen,
    )


def remittance_not_pending() -> Problem:
    return Problem(409, "remittance_not_pending", "该笔汇款已核实或已驳回，不能重复操作")


def settlement_already_claimed() -> Problem:
    return Problem(409, "settlement_already_claimed", "该订单已申请兑付，请等待平台审核")


def settlement_not_claimed() -> Problem:
    return Problem(409, "settlement_not_claimed", "该兑付申请不在待审核状态")


def settlement_not_approved() -> Problem:
    return Problem(409, "settlement_not_approved", "兑付申请审核通过后才能登记打款")


def settlement_already_paid() -> Problem:
    return Problem(409, "settlement_already_paid", "该笔服务券已兑付")


def settlement_cancelled() -> Problem:
    return Problem(409, "settlement_cancelled", "该兑付已因合同终止而取消")


def refund_already_refunded() -> Problem:
    return Problem(409, "refund_already_refunded", "该笔退款已登记退还")


def receipt_not_of_order(file_id: str) -> Problem:
    return Problem(
        422,
        "file_not_owned",
        f"文件 {file_id} 不属于贵单位，也不是该订单的汇款凭证（receipt_file_ids）",
        errors=[{"field": "receipt_file_ids", "message": "文件不属于贵单位"}],
    )


_BY_CODE = {
    "contract_terminated": contract_terminated,
    "amount_not_positive": amount_not_positive,
    "already_fully_paid": already_fully_paid,
    "plan_closed": plan_closed,
    "remittance_not_pending": remittance_not_pending,
    "settlement_already_claimed": settlement_already_claimed,
    "settlement_not_claimed": settlement_not_claimed,
    "settlement_not_approved": settlement_not_approved,
    "settlement_already_paid": settlement_already_paid,
    "settlement_cancelled": settlement_cancelled,
    "refund_already_refunded": refund_already_refunded,
}


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal."""
    if refusal.code == "remittance_exceeds_outstanding":
        return remittance_exceeds_outstanding(int(refusal.facts.get("room_fen", 0)))
    return _BY_CODE[refusal.code]()


def file_already_claimed(field: str) -> Problem:
    message = "该文件已用于另一笔服务券兑付申请，每份材料只能用于一笔兑付"
    return Problem(
        409, "file_already_claimed", f"{message}（{field}）", errors=[{"field": field, "message": message}]
    )
