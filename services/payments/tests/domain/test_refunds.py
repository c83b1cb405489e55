"""payments.domain.refunds' rules: a refund is marked refunded once."""

from __future__ import annotations

import pytest

from common.rules import Refusal
from payments.domain import refunds as rf


def test_a_refund_is_marked_refunded_once() -> None:
    assert rf.mark_refunded("due") == rf.RefundState.REFUNDED
    with pytest.raises(Refusal, match="refund_already_refunded"):
        rf.mark_refunded("refunded")
