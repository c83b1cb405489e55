"""quota.domain.vouchers' rules, as the manual and DESIGN.md state them: the subsidy, the voucher
types, expiry, the quota screen, the journal's arithmetic (quota.ledger) and the reservation
decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from quota.domain import campaigns, vouchers
from quota.ledger import BALANCES, Balances, apply, replay


def _b(*six: int) -> Balances:
    """Balances in BALANCES' order: total, remaining, reserved, used, settled, expired."""
    return Balances(**dict(zip(BALANCES, six, strict=True)))


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
    assert vouchers.subsidy(price, ratio, max_subsidy, remaining, room) == expected


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
    assert vouchers.voucher_type_of(category) == voucher_type


def test_the_remainder_expires_a_grace_after_the_window_closes() -> None:
    assert vouchers.expiry_moment(date(2024, 12, 31), timedelta(days=1)) == datetime(
        2025, 1, 1, 16, 0, tzinfo=UTC
    )
    assert vouchers.expiry_moment(date(2024, 12, 31), timedelta(0)) == campaigns.window_end(
        date(2024, 12, 31)
    )


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
        vouchers.voucher_state(has_voucher=has_voucher, expired=expired, application_state=application)
        == state
    )
    assert vouchers.STATE_LABELS["not_applied"] == "申请" and vouchers.STATE_LABELS["active"] == "去使用"


@pytest.mark.parametrize(
    ("kind", "amount", "after"),
    [
        ("issue", 100, _b(200, 150, 30, 20, 10, 0)),
        ("reserve", 30, _b(100, 20, 60, 20, 10, 0)),
        ("commit", 10, _b(100, 50, 20, 30, 10, 0)),
        ("release", 10, _b(100, 60, 20, 20, 10, 0)),
        ("settle", 10, _b(100, 50, 30, 20, 20, 0)),
        ("expire", 50, _b(100, 0, 30, 20, 10, 50)),
        ("reverse", 10, _b(100, 60, 30, 10, 10, 0)),
    ],
)
def test_each_movement_moves_fen_between_the_balances_and_keeps_the_invariant(kind, amount, after) -> None:
    before = _b(100, 50, 30, 20, 10, 0)
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
    assert b == _b(1000, 100, 0, 200, 200, 700) and b.holds()


# --- the reservation decision (the saga's step 2) ----------------------------------------------

IN_WINDOW = datetime(2024, 10, 1, 2, 0, tzinfo=UTC)
ORDER = vouchers.OrderFacts(
    enterprise_id="ent-1", voucher_id="v-1", category="企业诊断", price_fen=100_000, max_subsidy_fen=80_000
)
VOUCHER = vouchers.VoucherFacts(
    id="v-1",
    enterprise_id="ent-1",
    voucher_type="general",
    campaign_year=2024,
    ratio_bp=5000,
    remaining_fen=1_000_000,
    valid_from=date(2024, 9, 13),
    valid_to=date(2024, 12, 31),
    expired=False,
)


def _decide(
    order: vouchers.OrderFacts = ORDER,
    voucher: vouchers.VoucherFacts | None = VOUCHER,
    *,
    suspended: bool = False,
    now: datetime = IN_WINDOW,
    cap_room_fen: int | None = 10_000_000,
) -> vouchers.Reserved | vouchers.Rejected:
    return vouchers.reserve(order, voucher, suspended=suspended, now=now, cap_room_fen=cap_room_fen)


def test_an_order_that_passes_every_rule_reserves_half_its_price_within_the_product_max() -> None:
    assert _decide() == vouchers.Reserved(voucher_id="v-1", amount_fen=50_000, ratio_bp=5000, cap_year=2024)


# The chain, in its order, and how each rule is broken. Each case breaks one rule and every
# rule after it: the answer is the first broken rule's code.
CHAIN: list[tuple[str, dict[str, object]]] = [
    ("suspended", {"suspended": True}),
    ("no_voucher", {"voucher": None}),
    ("not_owner", {"voucher.enterprise_id": "ent-2"}),
    ("wrong_type", {"voucher.voucher_type": "equipment_leasing"}),
    ("voucher_not_active", {"voucher.expired": True}),
    ("outside_window", {"now": datetime(2025, 1, 1, tzinfo=UTC)}),  # 2025-01-01 08:00 in Shanghai
    ("nothing_left", {"voucher.remaining_fen": 0}),
    ("provider_cap_reached", {"cap_room_fen": 0}),
]


def _breaking(*rules: int) -> dict[str, object]:
    """_decide's arguments with the given rules of CHAIN broken."""
    kwargs: dict[str, object] = {}
    changes: dict[str, object] = {}
    for rule in rules:
        for key, value in CHAIN[rule][1].items():
            if key.startswith("voucher."):
                changes[key.removeprefix("voucher.")] = value
            else:
                kwargs[key] = value
    kwargs.setdefault("voucher", replace(VOUCHER, **changes))
    return kwargs


@pytest.mark.parametrize("rule", range(len(CHAIN)), ids=[code for code, _ in CHAIN])
def test_the_first_rule_an_order_fails_is_the_reason_it_is_refused(rule: int) -> None:
    code = CHAIN[rule][0]
    decision = _decide(**_breaking(*range(rule, len(CHAIN))))  # type: ignore[arg-type]
    assert decision == vouchers.Rejected(code, None if code in ("no_voucher",) else "v-1")
    assert decision.reason == vouchers.REASONS[code]
    assert _decide(**_breaking(rule)) == decision  # type: ignore[arg-type]  # and alone the same


@pytest.mark.parametrize(
    ("order", "voucher", "suspended", "expected"),
    [
        # suspended: the voucher the order names, which is not looked up
        (ORDER, None, True, vouchers.Rejected("suspended", "v-1")),
        (replace(ORDER, voucher_id=None), None, True, vouchers.Rejected("suspended", None)),
        # a category no voucher type pays for, no voucher named: refused by its type, none looked up
        (
            replace(ORDER, voucher_id=None, category="旅游"),
            None,
            False,
            vouchers.Rejected("wrong_type", None),
        ),
        # ... and with a voucher named, the voucher's own
        (replace(ORDER, category="旅游"), VOUCHER, False, vouchers.Rejected("wrong_type", "v-1")),
        # a voucher named but not found; none of the category's type found
        (replace(ORDER, category="旅游"), None, False, vouchers.Rejected("no_voucher", None)),
        (replace(ORDER, voucher_id=None), None, False, vouchers.Rejected("no_voucher", None)),
        # an empty voucher id names none (as the service reads it)
        (replace(ORDER, voucher_id="", category="旅游"), None, False, vouchers.Rejected("wrong_type", None)),
    ],
)
def test_which_voucher_a_refusal_names(order, voucher, suspended, expected) -> None:
    assert _decide(order, voucher, suspended=suspended) == expected


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (datetime(2024, 9, 12, 15, 59, 59, tzinfo=UTC), False),  # 2024-09-12 23:59:59 in Shanghai
        (datetime(2024, 9, 12, 16, 0, tzinfo=UTC), True),  # the first day, Shanghai midnight
        (datetime(2024, 12, 31, 15, 59, 59, tzinfo=UTC), True),  # the last second of the last day
        (datetime(2024, 12, 31, 16, 0, tzinfo=UTC), False),
    ],
)
def test_an_order_reserves_on_the_windows_shanghai_dates_inclusive(now, inside) -> None:
    decision = _decide(now=now)
    assert isinstance(decision, vouchers.Reserved) is inside
    assert inside or decision == vouchers.Rejected("outside_window", "v-1")


@pytest.mark.parametrize(
    ("price", "max_subsidy", "remaining", "room", "amount"),
    [
        (100_001, 80_000, 1_000_000, 10_000_000, 50_000),  # 50% of 1000.01元 is rounded down to the fen
        (3, 80_000, 1_000_000, 10_000_000, 1),  # 1.5 fen -> 1
        (100_000, 30_000, 1_000_000, 10_000_000, 30_000),  # the product's max
        (100_000, 80_000, 50_000, 10_000_000, 50_000),  # the remaining, exactly the half
        (100_000, 80_000, 49_999, 10_000_000, 49_999),  # the remaining, one fen short
        (100_000, 80_000, 1, 10_000_000, 1),  # one fen left
        (100_000, 80_000, 1_000_000, 1, 1),  # one fen of the provider's cap left
        (100_000, 80_000, 1_000_000, 50_000, 50_000),  # the cap room, exactly the half
        # a product that allows no subsidy reserves 0, even with nothing left of the voucher or the cap
        (1, 80_000, 0, 0, 0),
        (100_000, 0, 0, 0, 0),
        (0, 80_000, 1_000_000, 10_000_000, 0),
    ],
)
def test_the_reserved_amount_at_its_bounds(price, max_subsidy, remaining, room, amount) -> None:
    decision = _decide(
        replace(ORDER, price_fen=price, max_subsidy_fen=max_subsidy),
        replace(VOUCHER, remaining_fen=remaining),
        cap_room_fen=room,
    )
    assert decision == vouchers.Reserved(voucher_id="v-1", amount_fen=amount, ratio_bp=5000, cap_year=2024)


def test_a_negative_cap_room_refuses_as_a_reached_cap() -> None:
    assert _decide(cap_room_fen=-1) == vouchers.Rejected("provider_cap_reached", "v-1")


def test_a_special_type_voucher_has_no_provider_cap() -> None:
    leasing = replace(VOUCHER, voucher_type="equipment_leasing", ratio_bp=2000)
    order = replace(ORDER, category="直接设备租赁")
    assert vouchers.cap_year(leasing) is None
    assert _decide(order, leasing, cap_room_fen=None) == vouchers.Reserved(
        voucher_id="v-1", amount_fen=20_000, ratio_bp=2000, cap_year=None
    )
    assert _decide(order, leasing, cap_room_fen=0) == _decide(order, leasing, cap_room_fen=None)


def test_a_general_voucher_is_not_decided_without_its_providers_cap() -> None:
    assert vouchers.cap_year(VOUCHER) == 2024
    with pytest.raises(ValueError):
        _decide(cap_room_fen=None)
    # ... unless a rule before the cap refuses it, which the service checks before locking the cap
    assert vouchers.refused_before_cap(
        ORDER, replace(VOUCHER, remaining_fen=0), suspended=False, now=IN_WINDOW
    )
    assert _decide(voucher=replace(VOUCHER, remaining_fen=0), cap_room_fen=None) == vouchers.Rejected(
        "nothing_left", "v-1"
    )
