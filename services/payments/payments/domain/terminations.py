"""Whether a contract may be terminated: payments owns money paid out, so it decides, under
the plan's lock, in the same database as every payout (DESIGN.md "Termination").

Refused, whoever asks, once the settlement is paid (a settled subsidy is never clawed back by
the software) or once the service is complete (a dispute after completion is handled off the
platform and recorded, not reversed). An enterprise's own cancel of a signed order is a
termination before performance: refused as well once anything is paid, while a transfer it
recorded waits for its verification (it counts as paid until decided), or once the service
has started. Accepted, payments holds every payout of the order until contracts terminates the
contract (the plan terminated: confirmed money owed back, a transfer still pending stays
decidable and, confirmed, is owed back too) or withdraws the request (orders refused it).
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


def held(termination_request_id: str | None, plan_state: str) -> bool:
    """A termination accepted here and not yet decided by contracts: nothing is paid out and
    no new transfer is recorded (the contract is frozen)."""
    return termination_request_id is not None and plan_state != "terminated"


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
