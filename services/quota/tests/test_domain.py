"""quota's pure rules, as the manual and DESIGN.md state them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from quota import domain
from quota.ledger import Balances, apply, replay

TIERS = list(domain.DEFAULT_TIERS)


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
    tier = domain.tier_for(designations, TIERS)
    assert tier is not None and (tier.label, tier.amount_fen) == (label, amount_fen)


@pytest.mark.parametrize("designations", [[], ["某个未列入的称号"]])
def test_an_enterprise_on_no_list_has_no_tier_and_the_base_tier_is_5wan(designations) -> None:
    assert domain.tier_for(designations, TIERS) is None
    assert domain.base_tier(TIERS).amount_fen == 5_000_000
    assert domain.base_tier(TIERS).designation == "一般规模以上制造业企业"


@pytest.mark.parametrize(
    ("requested", "basis", "share_bp", "cap_left", "problem"),
    [
        (500_000_00, 1_000_000_00, 5000, 1_000_000_00, None),  # 50% of the guarantee fee
        (500_000_01, 1_000_000_00, 5000, 1_000_000_00, "basis_insufficient"),
        (200_000_00, 1_000_000_00, 2000, 500_000_00, None),  # 20% of the lease interest
        (200_000_01, 1_000_000_00, 2000, 500_000_00, "basis_insufficient"),
        (300_000_00, 10_000_000_00, 5000, 200_000_00, "over_yearly_cap"),
        (0, 100, 5000, 100, "amount_not_positive"),
        (100, 0, 5000, 100, "amount_not_positive"),
    ],
)
def test_a_special_request_stays_within_its_share_of_the_basis_and_the_cap_left(
    requested, basis, share_bp, cap_left, problem
) -> None:
    assert domain.special_request_problem(requested, basis, share_bp, cap_left) == problem


@pytest.mark.parametrize(
    ("approved", "requested", "cap_left", "problem"),
    [
        (100, 100, 100, None),
        (101, 100, 1000, "approved_over_request"),
        (100, 200, 99, "over_yearly_cap"),
        (0, 1, 1, "amount_not_positive"),
    ],
)
def test_an_approved_amount_is_at_most_the_request_and_the_cap(
    approved, requested, cap_left, problem
) -> None:
    assert domain.approval_problem(approved, requested, cap_left) == problem


@pytest.mark.parametrize(
    ("price", "ratio", "max_subsidy", "remaining", "room", "expected"),
    [
        (7600, 5000, 10_000, 5_000_000, None, 3800),  # the manual: 76元 -> 券后价 38元
        (30_000_000, 5000, 9_000_000, 9_000_000, None, 9_000_000),  # 300,000元 with a 90,000元 voucher
        (30_000_000, 5000, 20_000_000, 9_000_000, None, 9_000_000),  # the voucher's remaining bounds it
        (10_000, 5000, 2_000, 100_000, None, 2_000),  # the product's max
        (10_000, 5000, 10_000, 100_000, 1_000, 1_000),  # the provider's cap room
        (10_001, 5000, 10_000, 100_000, None, 5_000),  # rounded down to the fen
        (10_000, 5000, 10_000, 0, None, 0),
    ],
)
def test_the_subsidy_is_the_least_of_ratio_price_product_max_remaining_and_cap_room(
    price, ratio, max_subsidy, remaining, room, expected
) -> None:
    assert domain.subsidy(price, ratio, max_subsidy, remaining, room) == expected


@pytest.mark.parametrize(
    ("category", "voucher_type"),
    [
        ("企业诊断", "general"),
        ("数字化转型", "general"),
        ("融资担保", "financing_guarantee"),
        ("直接设备租赁", "equipment_leasing"),
        ("其他服务", "general"),
        ("旅游", None),
    ],
)
def test_each_category_takes_its_voucher_type(category, voucher_type) -> None:
    assert domain.voucher_type_of(category) == voucher_type


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (datetime(2024, 9, 12, 15, 59, 59, tzinfo=UTC), False),  # 2024-09-12 23:59:59 in Shanghai
        (datetime(2024, 9, 12, 16, 0, 0, tzinfo=UTC), True),  # 2024-09-13 00:00 in Shanghai
        (datetime(2024, 12, 31, 15, 59, 59, tzinfo=UTC), True),
        (datetime(2024, 12, 31, 16, 0, 0, tzinfo=UTC), False),  # 2025-01-01 in Shanghai
    ],
)
def test_windows_are_inclusive_shanghai_dates(at, inside) -> None:
    lo, hi = domain.WINDOWS_2024["general"]
    assert domain.in_window(domain.business_day(at), lo, hi) is inside


def test_a_window_closes_at_midnight_shanghai_after_its_last_day() -> None:
    assert domain.window_end(date(2024, 12, 31)) == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)


def test_the_remainder_expires_a_grace_after_the_window_closes() -> None:
    assert domain.expiry_moment(date(2024, 12, 31), timedelta(days=1)) == datetime(
        2025, 1, 1, 16, 0, tzinfo=UTC
    )
    assert domain.expiry_moment(date(2024, 12, 31), timedelta(0)) == domain.window_end(date(2024, 12, 31))


@pytest.mark.parametrize(
    ("now", "closed"),
    [
        (datetime(2024, 12, 31, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 on the last day
        (datetime(2024, 12, 31, 16, 0, tzinfo=UTC), True),  # midnight after it, Shanghai
        (datetime(2025, 3, 1, tzinfo=UTC), True),
    ],
)
def test_no_approval_once_the_window_has_closed(now, closed) -> None:
    assert domain.window_closed(date(2024, 12, 31), now) is closed


@pytest.mark.parametrize(
    ("has_voucher", "expired", "application", "state"),
    [
        (False, False, None, "not_applied"),
        (False, False, "pending_review", "pending_review"),
        (False, False, "rejected", "rejected"),
        (True, False, "approved", "active"),
        (True, True, "approved", "expired"),
        (True, False, "pending_review", "active"),  # a further special request under review
    ],
)
def test_the_quota_screen_state_per_type(has_voucher, expired, application, state) -> None:
    assert (
        domain.voucher_state(has_voucher=has_voucher, expired=expired, application_state=application) == state
    )
    assert domain.STATE_LABELS["not_applied"] == "申请" and domain.STATE_LABELS["active"] == "去使用"


@pytest.mark.parametrize(
    ("cells", "reason_part"),
    [
        (["91450100MA5L0DEM02", "创新型中小企业"], "校验位"),
        (["123", "创新型中小企业"], "长度"),
        (["", "创新型中小企业"], "请填写"),
    ],
)
def test_a_row_with_a_bad_uscc_is_refused_with_the_reason(cells, reason_part) -> None:
    _u, _d, reason = domain.check_row(cells, domain.known_designations(TIERS), set())
    assert reason is not None and reason_part in reason


def test_a_row_with_an_unknown_designation_or_repeated_in_the_file_is_refused() -> None:
    from stdnum.cn import uscc

    number = "91450100MA5L0DEM0" + uscc.calc_check_digit("91450100MA5L0DEM0")
    known, seen = domain.known_designations(TIERS), set()
    assert domain.check_row([number, "创新型中小企业"], known, seen)[2] is None
    assert "重复" in (domain.check_row([number, "创新型中小企业"], known, seen)[2] or "")
    assert "未知" in (domain.check_row([number, "旅游达人"], known, seen)[2] or "")


@pytest.mark.parametrize(
    ("kind", "amount", "after"),
    [
        ("issue", 100, Balances(200, 150, 30, 20, 10, 0)),
        ("reserve", 30, Balances(100, 20, 60, 20, 10, 0)),
        ("commit", 10, Balances(100, 50, 20, 30, 10, 0)),
        ("release", 10, Balances(100, 60, 20, 20, 10, 0)),
        ("settle", 10, Balances(100, 50, 30, 20, 20, 0)),
        ("expire", 50, Balances(100, 0, 30, 20, 10, 50)),
        ("reverse", 10, Balances(100, 60, 30, 10, 10, 0)),
    ],
)
def test_each_movement_moves_fen_between_the_balances_and_keeps_the_invariant(kind, amount, after) -> None:
    before = Balances(100, 50, 30, 20, 10, 0)
    assert before.holds()
    assert apply(before, kind, amount) == after
    assert after.holds()


def test_a_journal_replays_to_its_balances() -> None:
    b = replay(
        [
            ("issue", 1000),
            ("reserve", 300),
            ("commit", 200),
            ("release", 100),
            ("settle", 200),
            ("expire", 700),
        ]
    )
    assert b == Balances(1000, 100, 0, 200, 200, 700) and b.holds()
