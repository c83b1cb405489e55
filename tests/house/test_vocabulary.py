"""One word for one idea across services (issue 15): where a service keeps its own copy of
another's states (orders' copy of the contract's, filled from contracts' events), the copy
uses the owner's words, so a client and the portal read one vocabulary."""

from __future__ import annotations

from contracts.domain.contracts import State as ContractOwnState
from orders.domain import ContractState as OrdersCopy


def test_orders_copy_of_a_contracts_state_uses_the_contracts_own_words() -> None:
    assert {s.value for s in OrdersCopy} <= {s.value for s in ContractOwnState}
    assert {s.name for s in OrdersCopy} == {ContractOwnState(s.value).name for s in OrdersCopy}


def test_awaiting_review_is_called_pending_review_everywhere_it_is_reviewed() -> None:
    from catalog.domain.products import Status as ProductStatus
    from catalog.domain.providers import AppState as ApplicationState

    assert ApplicationState.PENDING_REVIEW.value == ProductStatus.PENDING_REVIEW.value == "pending_review"
    from quota.domain.applications import APPLICATION_STATE_LABELS

    assert ContractOwnState.PENDING_REVIEW.value == "pending_review"
    assert "pending_review" in APPLICATION_STATE_LABELS
