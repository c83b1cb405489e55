"""Whether a contract may be terminated: payments owns money paid out, so it decides, under
the plan's lock, in the same database as every payout (DESIGN.md "Termination").

Refused, whoever asks, once the settlement is paid (a settled subsidy is never clawed back by
the software) or once the service is complete (a dispute after completion is handled off the
platform and recorded, not reversed). An enterprise's own cancel of a signed order is a
termination before performance: refused as well once anything is paid, while a transfer it
recorded waits for its verification (it counts as paid until decided), or once the service
has started. Accepted, the plan is terminated and nothing more is paid out; confirmed money is
owed back, and a transfer still pending stays decidable (confirmed, it is owed back too).
"""

from __future__ import annotations

from dataclasses import dataclass

REFUSALS: dict[str, str] = {
    "settlement_paid": "该合同的服务券已兑付，不能终止合同",
    "service_completed": "服务已完成，不能终止合同（完成后的争议请线下处理并登记）",
    "order_already_paid": "企业已支付款项，订单不能取消，如有争议请联系平台",
    "payment_pending": "有待服务机构核实的汇款，请待核实后再取消订单",
    "service_started": "服务已开始，订单不能取消，如有争议请联系平台",
}


@dataclass(frozen=True)
class PlanFacts:
    requested_by: str  # administrator | enterprise
    paid_fen: int
    pending_fen: int
    settlement_paid: bool
    service_started: bool
    service_completed: bool


def refusal(f: PlanFacts) -> str | None:
    """The stable code of the refusal, or None: the termination is accepted."""
    if f.settlement_paid:
        return "settlement_paid"
    if f.service_completed:
        return "service_completed"
    if f.requested_by == "enterprise":
        if f.paid_fen > 0:
            return "order_already_paid"
        if f.pending_fen > 0:
            return "payment_pending"
        if f.service_started:
            return "service_started"
    return None
