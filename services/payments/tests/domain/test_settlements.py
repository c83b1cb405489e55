"""payments.domain.settlements' rules: the settlement claim's states (a rejected claim may be
claimed again)."""

from __future__ import annotations

import pytest

from common.rules import Refusal
from payments.domain import settlements as st


@pytest.mark.parametrize(
    ("state", "action", "after"),
    [
        ("open", "claim", "claimed"),
        ("rejected", "claim", "claimed"),  # corrected documents: claimed again
        ("claimed", "approve", "approved"),
        ("claimed", "reject", "rejected"),
        ("approved", "pay", "paid"),
        ("open", "cancel", "cancelled"),
        ("approved", "cancel", "cancelled"),
        ("rejected", "cancel", "cancelled"),
    ],
)
def test_a_settlement_claim_moves_as_its_state_machine_allows(state: str, action: str, after: str) -> None:
    assert st.transition(state, action) == after


@pytest.mark.parametrize(
    ("state", "action", "code"),
    [
        ("claimed", "claim", "settlement_already_claimed"),
        ("approved", "claim", "settlement_already_claimed"),
        ("open", "pay", "settlement_not_approved"),
        ("claimed", "pay", "settlement_not_approved"),
        ("open", "approve", "settlement_not_claimed"),
        ("rejected", "reject", "settlement_not_claimed"),
        ("paid", "claim", "settlement_already_paid"),
        ("paid", "cancel", "settlement_already_paid"),  # a settled subsidy is never cancelled
        ("cancelled", "claim", "settlement_cancelled"),
        ("cancelled", "pay", "settlement_cancelled"),
    ],
)
def test_a_settlement_step_out_of_turn_is_refused(state: str, action: str, code: str) -> None:
    with pytest.raises(Refusal) as refused:
        st.transition(state, action)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("state", "provider", "finance", "actions"),
    [
        ("open", True, False, ["claim"]),
        ("claimed", True, False, []),
        ("claimed", False, True, ["approve", "reject"]),
        ("approved", False, True, ["pay"]),
        ("paid", True, True, []),
    ],
)
def test_settlement_actions_are_what_the_caller_may_do_now(
    state: str, provider: bool, finance: bool, actions: list[str]
) -> None:
    assert st.actions(state, provider=provider, finance=finance) == actions
