"""payments.domain.terminations' rules: whether a contract may be terminated."""

from __future__ import annotations

import pytest

from payments.domain import terminations as tm


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        ({}, None),
        ({"settlement_paid": True}, "settlement_paid"),
        ({"service_completed": True}, "service_completed"),
        ({"paid_fen": 1, "service_started": True}, None),  # staff may end a dispute in service
        ({"requested_by": "enterprise"}, None),
        ({"requested_by": "enterprise", "paid_fen": 1}, "order_already_paid"),
        ({"requested_by": "enterprise", "pending_fen": 1}, "payment_pending"),
        ({"requested_by": "enterprise", "service_started": True}, "service_started"),
        ({"requested_by": "enterprise", "settlement_paid": True}, "settlement_paid"),
    ],
)
def test_a_termination_is_refused_for_the_first_reason_that_holds(facts: dict, code: str | None) -> None:
    base = {
        "requested_by": "administrator",
        "paid_fen": 0,
        "pending_fen": 0,
        "settlement_paid": False,
        "service_started": False,
        "service_completed": False,
    }
    got = tm.refusal(tm.PlanFacts(**(base | facts)))
    assert got == code
    assert code is None or tm.REFUSALS[code]
