"""quota.domain.applications' rules, as the manual and DESIGN.md state them: the tiers, special-type
requests and approved amounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.rules import Refusal
from quota.domain import applications

from .samples import TIERS


def refused(check: Callable[..., None], *args: Any) -> Refusal | None:
    """What ``check`` refuses ``args`` with (None: it lets them pass)."""
    try:
        check(*args)
    except Refusal as refusal:
        return refusal
    return None


@pytest.mark.parametrize(
    ("designations", "label", "amount_fen"),
    [
        (["一般规模以上制造业企业"], "5万", 5_000_000),
        (["创新型中小企业"], "10万", 10_000_000),
        (["自治区质量管理标杆企业", "一般规模以上制造业企业"], "20万", 20_000_000),
        (["创新型中小企业", "专精特新“小巨人”企业", "自治区创新示范企业"], "30万", 30_000_000),
    ],
)
def test_an_enterprise_gets_the_highest_tier_its_designations_give(designations, label, amount_fen) -> None:
    tier = applications.tier_for(designations, TIERS)
    assert tier is not None and (tier.label, tier.amount_fen) == (label, amount_fen)


@pytest.mark.parametrize("designations", [[], ["某个未列入的称号"]])
def test_an_enterprise_on_no_list_has_no_tier_and_the_base_tier_is_5wan(designations) -> None:
    assert applications.tier_for(designations, TIERS) is None
    assert applications.base_tier(TIERS).amount_fen == 5_000_000
    assert applications.base_tier(TIERS).designation == "一般规模以上制造业企业"


@pytest.mark.parametrize(
    ("requested", "basis", "share_bp", "cap_left", "refusal"),
    [
        (500_000_00, 1_000_000_00, 5000, 1_000_000_00, None),  # 50% of the guarantee fee
        (500_000_01, 1_000_000_00, 5000, 1_000_000_00, Refusal("basis_insufficient", field="basis_fen")),
        (200_000_00, 1_000_000_00, 2000, 500_000_00, None),  # 20% of the lease interest
        (200_000_01, 1_000_000_00, 2000, 500_000_00, Refusal("basis_insufficient", field="basis_fen")),
        (300_000_00, 10_000_000_00, 5000, 200_000_00, Refusal("over_yearly_cap", field="requested_fen")),
        (0, 100, 5000, 100, Refusal("amount_not_positive", field="requested_fen")),
        (100, 0, 5000, 100, Refusal("amount_not_positive", field="requested_fen")),
    ],
)
def test_a_special_request_stays_within_its_share_of_the_basis_and_the_cap_left(
    requested, basis, share_bp, cap_left, refusal
) -> None:
    assert refused(applications.check_special_request, requested, basis, share_bp, cap_left) == refusal


@pytest.mark.parametrize(
    ("approved", "requested", "cap_left", "refusal"),
    [
        (100, 100, 100, None),
        (101, 100, 1000, Refusal("approved_over_request", field="approved_fen")),
        (100, 200, 99, Refusal("over_yearly_cap", field="approved_fen")),
        (0, 1, 1, Refusal("amount_not_positive", field="approved_fen")),
    ],
)
def test_an_approved_amount_is_at_most_the_request_and_the_cap(
    approved, requested, cap_left, refusal
) -> None:
    assert refused(applications.check_approved_amount, approved, requested, cap_left) == refusal
