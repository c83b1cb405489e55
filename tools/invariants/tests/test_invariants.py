"""The invariants command: every check catches the violation it is for (hand-made rows, one
broken fact at a time, over a world where every invariant holds), and the command reads the
services' real tables (their migrations) read-only and exits as documented."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from common.db import connect, migrate
from invariants import check_all
from invariants.checks import BALANCES, apply_movement
from invariants.cli import database_urls, run
from invariants.rows import (
    Application,
    Campaign,
    Claim,
    Conflict,
    Contract,
    Movement,
    Order,
    Plan,
    ProviderCap,
    Refund,
    Remittance,
    Reservation,
    Snapshot,
    Voucher,
)

ROOT = Path(__file__).resolve().parents[3]
E, P, V = "ent-1", "prov-1", "voucher-1"
WAN5 = 5_000_000
S = 3800  # the manual's 76元 -> 38元


def journal(voucher_id: str, steps: list[tuple[str, int, str | None]]) -> list[Movement]:
    balances = dict.fromkeys(BALANCES, 0)
    out = []
    for i, (kind, amount, order_id) in enumerate(steps, start=1):
        after = apply_movement(balances, kind, amount)
        assert after is not None
        balances = after
        out.append(
            Movement(id=i, voucher_id=voucher_id, kind=kind, amount_fen=amount, order_id=order_id, **balances)
        )
    return out


def signed_contract(order_id: str, state: str = "signed", subsidy: int = S, deposit: int = 1000) -> Contract:
    total = 7600
    return Contract(
        id=f"c-{order_id}",
        order_id=order_id,
        state=state,
        total_fen=total,
        subsidy_fen=subsidy,
        payable_fen=total - subsidy,
        deposit_fen=deposit,
        balance_fen=total - subsidy - deposit,
        reserved_fen=subsidy,
    )


def plan_of(c: Contract, state: str = "open", paid: int = 0, pending: int = 0) -> Plan:
    return Plan(
        order_id=c.order_id,
        contract_id=c.id,
        state=state,
        total_fen=c.total_fen,
        subsidy_fen=c.subsidy_fen,
        payable_fen=c.payable_fen,
        deposit_fen=c.deposit_fen,
        balance_fen=c.balance_fen,
        paid_fen=paid,
        pending_fen=pending,
    )


def world() -> Snapshot:
    """One enterprise's general voucher (5万) and five orders with one provider:
    o1 待签合同 (reserved), o2 评价完成 (committed, paid, settled), o3 cancelled (released),
    o4 terminated after a confirmed deposit (reversed, refund due), o5 待支付 without voucher."""
    steps = [
        ("issue", WAN5, None),
        ("reserve", S, "o2"),
        ("reserve", S, "o3"),
        ("release", S, "o3"),
        ("reserve", S, "o4"),
        ("commit", S, "o2"),
        ("commit", S, "o4"),
        ("settle", S, "o2"),
        ("reverse", S, "o4"),
        ("reserve", S, "o1"),
    ]
    movements = journal(V, steps)
    last = movements[-1]
    voucher = Voucher(
        id=V,
        enterprise_id=E,
        campaign_year=2026,
        voucher_type="general",
        tier="一般规模以上制造业企业",
        **{b: getattr(last, b) for b in BALANCES},
    )
    c2, c4, c5 = (
        signed_contract("o2"),
        signed_contract("o4", "terminated"),
        signed_contract("o5", subsidy=0, deposit=7600),
    )
    order = dict(enterprise_id=E, provider_id=P)
    return Snapshot(
        available={"quota", "orders", "contracts", "payments"},
        vouchers=[voucher],
        movements=movements,
        reservations=[
            Reservation("o1", "reserved", V, P, "general", 2026, S, 0),
            Reservation("o2", "settled", V, P, "general", 2026, S, S),
            Reservation("o3", "released", V, P, "general", 2026, S, 0),
            Reservation("o4", "reversed", V, P, "general", 2026, S, S),
            Reservation("o5", "none", None, P, "general", None, 0, 0),
        ],
        caps=[ProviderCap(P, 2026, 500_000_000, reserved_fen=S, used_fen=S)],
        campaigns=[
            Campaign(
                2026,
                [
                    {"label": "5万", "amount_fen": WAN5, "designations": ["一般规模以上制造业企业"]},
                    {"label": "10万", "amount_fen": 2 * WAN5, "designations": ["专精特新中小企业"]},
                ],
            )
        ],
        applications=[
            Application("a1", E, 2026, "general", "approved", "一般规模以上制造业企业", WAN5, None, V)
        ],
        orders=[
            Order("o1", "awaiting_contract", use_voucher=True, voucher_id=V, subsidy_fen=S, **order),
            Order(
                "o2",
                "evaluated",
                use_voucher=True,
                voucher_id=V,
                subsidy_fen=S,
                contract_subsidy_fen=S,
                contract_payable_fen=7600 - S,
                paid_fen=7600 - S,
                **order,
            ),
            Order("o3", "cancelled", use_voucher=True, voucher_id=V, subsidy_fen=S, **order),
            Order(
                "o4",
                "terminated",
                use_voucher=True,
                voucher_id=V,
                subsidy_fen=S,
                contract_subsidy_fen=S,
                paid_fen=1000,
                **order,
            ),
            Order("o5", "awaiting_deposit", contract_subsidy_fen=0, contract_payable_fen=7600, **order),
        ],
        contracts=[c2, c4, c5],
        plans=[
            plan_of(c2, "closed", paid=7600 - S),
            plan_of(c4, "terminated", paid=1000),
            plan_of(c5, pending=2000),
        ],
        remittances=[
            Remittance("r2a", "o2", 1000, "confirmed"),
            Remittance("r2b", "o2", 7600 - S - 1000, "confirmed"),
            Remittance("r4", "o4", 1000, "confirmed"),
            Remittance("r5", "o5", 2000, "pending"),
            Remittance("r5x", "o5", 500, "rejected"),
        ],
        claims=[Claim("s2", "o2", S, "paid", P)],
        refunds=[Refund("f4", "o4", 1000, "due", "r4")],
    )


def test_a_consistent_world_breaks_no_invariant() -> None:
    report = check_all(world())
    assert report.violations == []
    assert not report.skipped and len(report.ran) == 16


def _replace(items: list, key: str, value: str, **changes: object) -> list:  # type: ignore[type-arg]
    return [dataclasses.replace(i, **changes) if getattr(i, key) == value else i for i in items]


def voucher(**ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.vouchers = _replace(s.vouchers, "id", V, **ch)

    return f


def order(order_id: str, **ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.orders = _replace(s.orders, "id", order_id, **ch)

    return f


def reservation(order_id: str, **ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.reservations = _replace(s.reservations, "order_id", order_id, **ch)

    return f


def contract(order_id: str, **ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.contracts = _replace(s.contracts, "order_id", order_id, **ch)

    return f


def plan(order_id: str, **ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.plans = _replace(s.plans, "order_id", order_id, **ch)

    return f


def claim(order_id: str, **ch: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.claims = _replace(s.claims, "order_id", order_id, **ch)

    return f


def drop(attr: str, pred: Callable[[object], bool]) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        setattr(s, attr, [i for i in getattr(s, attr) if not pred(i)])

    return f


def add(attr: str, item: object) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        getattr(s, attr).append(item)

    return f


def both(*fs: Callable[[Snapshot], None]) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        for g in fs:
            g(s)

    return f


def default_cap(amount: int) -> Callable[[Snapshot], None]:
    def f(s: Snapshot) -> None:
        s.default_cap_fen = amount

    return f


last_remaining = world().vouchers[0].remaining_fen

BREAKS: list[tuple[str, Callable[[Snapshot], None], str, dict[str, str]]] = [
    # per voucher
    (
        "total is not the sum of its parts",
        voucher(remaining_fen=last_remaining + 1),
        "voucher_total",
        {"voucher": V},
    ),
    (
        "a balance is negative",
        voucher(expired_fen=-100, remaining_fen=last_remaining + 100),
        "voucher_negative",
        {"voucher": V},
    ),
    ("settled exceeds used", voucher(settled_fen=S + 1), "voucher_settled_above_used", {"voucher": V}),
    (
        "a movement records balances its amount does not give",
        lambda s: setattr(
            s, "movements", [dataclasses.replace(m, amount_fen=1) if m.id == 2 else m for m in s.movements]
        ),
        "journal_balances_after",
        {"voucher": V, "movement": "2", "order": "o2"},
    ),
    (
        "the journal lacks the last movement",
        drop("movements", lambda m: m.id == 10),
        "journal_mismatch",
        {"voucher": V},
    ),
    (
        "movements of an unknown voucher",
        add("movements", Movement(99, "ghost", "issue", 1, total_fen=1, remaining_fen=1)),
        "journal_orphan",
        {"voucher": "ghost"},
    ),
    (
        "reserved is not its held reservations",
        reservation("o1", amount_fen=3000),
        "voucher_reserved_vs_reservations",
        {"voucher": V},
    ),
    (
        "used is not its committed reservations",
        reservation("o2", committed_fen=3000),
        "voucher_used_vs_reservations",
        {"voucher": V},
    ),
    (
        "settled is not its settled reservations",
        both(reservation("o2", state="committed"), claim("o2", state="approved")),
        "voucher_settled_vs_reservations",
        {"voucher": V},
    ),
    (
        "a live order's subsidy is not on the voucher",
        order("o1", subsidy_fen=3000),
        "voucher_vs_live_orders",
        {"voucher": V, "orders": "o1,o2"},
    ),
    # per order
    (
        "a cancelled order still holds its reservation",
        order("o1", status="cancelled"),
        "ended_order_holds_voucher",
        {"order": "o1", "voucher": V},
    ),
    (
        "an order waits for a decision quota made",
        order("o1", status="pending_voucher"),
        "order_behind_quota",
        {"order": "o1", "voucher": V},
    ),
    (
        "a reservation differs from the order's subsidy",
        order("o1", subsidy_fen=3000),
        "order_reservation_amount",
        {"order": "o1", "voucher": V},
    ),
    (
        "an order with a subsidy has no reservation",
        reservation("o1", state="released"),
        "order_reservation_missing",
        {"order": "o1", "voucher": V},
    ),
    (
        "a signed order's reservation was never committed",
        both(reservation("o2", state="reserved"), claim("o2", state="open")),
        "signed_order_not_committed",
        {"order": "o2", "voucher": V},
    ),
    (
        "the committed amount is not the contract's subsidy",
        both(
            contract("o2", subsidy_fen=3000, payable_fen=4600, balance_fen=3600),
            order("o2", contract_subsidy_fen=3000, contract_payable_fen=4600),
        ),
        "committed_vs_contract_subsidy",
        {"order": "o2", "voucher": V},
    ),
    (
        "a signed contract's subsidy was never deducted",
        both(
            reservation("o5", state="none"),
            contract("o5", subsidy_fen=100, payable_fen=7500, deposit_fen=7500),
            order("o5", contract_subsidy_fen=100),
        ),
        "signed_subsidy_without_deduction",
        {"order": "o5"},
    ),
    (
        "a signed contract's order is not signed",
        order("o2", status="awaiting_contract"),
        "signed_contract_order_status",
        {"order": "o2", "contract": "c-o2"},
    ),
    (
        "a voided contract's order is not cancelled",
        add("contracts", Contract("c-o1", "o1", "voided")),
        "voided_contract_order_status",
        {"order": "o1", "contract": "c-o1"},
    ),
    (
        "a terminated contract's order is not terminated",
        order("o4", status="awaiting_service"),
        "terminated_contract_order_status",
        {"order": "o4", "contract": "c-o4"},
    ),
    (
        "a signed order has no signed contract",
        contract("o5", state="agreed"),
        "signed_order_without_signed_contract",
        {"order": "o5"},
    ),
    (
        "a contract's amounts do not add up",
        contract("o5", balance_fen=1),
        "contract_amounts",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "a contract's subsidy exceeds the reservation",
        contract("o2", reserved_fen=S - 1),
        "contract_subsidy_above_reserved",
        {"order": "o2", "contract": "c-o2"},
    ),
    (
        "the order shows other amounts than the contract",
        order("o5", contract_payable_fen=7000),
        "order_contract_amounts",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "a terminated contract keeps its deduction",
        reservation("o4", state="committed"),
        "terminated_contract_deduction",
        {"order": "o4", "contract": "c-o4", "voucher": V},
    ),
    (
        "a contract of an unknown order",
        add("contracts", Contract("c-x", "ox", "drafting")),
        "contract_without_order",
        {"order": "ox", "contract": "c-x"},
    ),
    # payments against contracts
    (
        "confirmed + pending exceed payable",
        both(
            plan("o5", pending_fen=7000, paid_fen=1000),
            add("remittances", Remittance("r5b", "o5", 5000, "pending")),
            add("remittances", Remittance("r5c", "o5", 1000, "confirmed")),
        ),
        "plan_overpaid",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "remittances exceed payable",
        add("remittances", Remittance("r5b", "o5", 7000, "pending")),
        "remittances_over_payable",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "paid is not the confirmed remittances",
        plan("o2", paid_fen=1000),
        "plan_paid_vs_remittances",
        {"order": "o2", "contract": "c-o2"},
    ),
    (
        "pending is not the pending remittances",
        plan("o5", pending_fen=0),
        "plan_pending_vs_remittances",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "deposit + balance is not payable",
        plan("o5", balance_fen=5),
        "plan_stages",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "payable is not total - subsidy",
        plan("o5", total_fen=9999),
        "plan_payable",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "a settlement of another amount than the plan's subsidy",
        claim("o2", amount_fen=3000),
        "settlement_vs_plan",
        {"order": "o2", "claim": "s2"},
    ),
    (
        "an open settlement on a terminated plan",
        lambda s: setattr(
            s,
            "claims",
            [
                *s.claims,
                Claim("s4", "o4", next(p.subsidy_fen for p in s.plans if p.order_id == "o4"), "open"),
            ],
        ),
        "settlement_of_terminated_plan",
        {"order": "o4", "claim": "s4"},
    ),
    (
        "a signed contract has no payment plan",
        both(drop("plans", lambda p: p.order_id == "o5"), drop("remittances", lambda m: m.order_id == "o5")),
        "signed_contract_without_plan",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "a remittance on an order without plan",
        add("remittances", Remittance("rx", "o1", 100, "pending")),
        "remittance_without_plan",
        {"order": "o1"},
    ),
    (
        "the plan's amounts differ from the contract's",
        plan("o5", total_fen=9999),
        "plan_vs_contract",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "a terminated contract's plan is still open",
        plan("o4", state="open"),
        "plan_termination",
        {"order": "o4", "contract": "c-o4"},
    ),
    (
        "a plan whose contract is not signed",
        contract("o5", state="agreed"),
        "plan_without_signed_contract",
        {"order": "o5", "contract": "c-o5"},
    ),
    ("orders shows another paid amount", order("o2", paid_fen=1000), "order_paid_vs_plan", {"order": "o2"}),
    # refunds
    (
        "a confirmed remittance of a terminated plan has no refund",
        drop("refunds", lambda f: True),
        "refund_missing",
        {"order": "o4", "remittance": "r4"},
    ),
    (
        "a refund on a plan that is not terminated",
        add("refunds", Refund("f2", "o2", 1000, "due", "r2a")),
        "refund_without_termination",
        {"order": "o2", "refund": "f2", "remittance": "r2a"},
    ),
    (
        "a refund of another amount than its remittance",
        lambda s: setattr(s, "refunds", [dataclasses.replace(s.refunds[0], amount_fen=999)]),
        "refund_vs_remittance",
        {"order": "o4", "refund": "f4", "remittance": "r4"},
    ),
    (
        "a remittance refunded twice",
        add("refunds", Refund("f4b", "o4", 1000, "due", "r4")),
        "refund_twice",
        {"remittance": "r4"},
    ),
    # settlements against deductions
    (
        "two settlements for one order",
        add("claims", Claim("s2b", "o2", S, "open", P)),
        "settlement_twice",
        {"order": "o2", "claims": "s2,s2b"},
    ),
    (
        "a settlement of another amount than the deduction",
        claim("o2", amount_fen=3000),
        "settlement_vs_deduction",
        {"order": "o2", "claim": "s2", "voucher": V},
    ),
    (
        "a settlement of another amount than the contract's subsidy",
        claim("o2", amount_fen=3000),
        "settlement_vs_contract",
        {"order": "o2", "claim": "s2", "voucher": V},
    ),
    (
        "a paid settlement quota never settled",
        both(reservation("o2", state="committed"), voucher(settled_fen=0)),
        "paid_settlement_not_settled",
        {"order": "o2", "claim": "s2", "voucher": V},
    ),
    (
        "quota settled what was never paid",
        claim("o2", state="approved"),
        "settled_without_paid_settlement",
        {"order": "o2", "voucher": V},
    ),
    (
        "an open settlement on a terminated contract",
        add("claims", Claim("s4", "o4", S, "open", P)),
        "settlement_of_terminated_contract",
        {"order": "o4", "claim": "s4", "voucher": V},
    ),
    (
        "a completed order with a subsidy has no settlement",
        drop("claims", lambda c: True),
        "settlement_missing",
        {"order": "o2"},
    ),
    # per enterprise and campaign, per provider and year
    (
        "two general vouchers in one campaign",
        add(
            "vouchers",
            Voucher(
                "voucher-2",
                E,
                2026,
                "general",
                tier="一般规模以上制造业企业",
                total_fen=WAN5,
                remaining_fen=WAN5,
            ),
        ),
        "general_voucher_twice",
        {"enterprise": E, "vouchers": f"{V},voucher-2"},
    ),
    (
        "a general voucher's total is not its tier's amount",
        lambda s: setattr(s, "applications", [dataclasses.replace(s.applications[0], tier_fen=2 * WAN5)]),
        "general_voucher_tier",
        {"enterprise": E, "voucher": V},
    ),
    (
        "a general voucher without its application is checked against the campaign's tiers",
        both(drop("applications", lambda a: True), voucher(tier="专精特新中小企业")),
        "general_voucher_tier",
        {"enterprise": E, "voucher": V},
    ),
    (
        "a provider's subsidies exceed its cap",
        lambda s: setattr(s, "caps", [dataclasses.replace(s.caps[0], cap_fen=5000)]),
        "provider_cap_exceeded",
        {"provider": P, "year": "2026"},
    ),
    (
        "a provider without cap row exceeds the default cap",
        both(drop("caps", lambda c: True), default_cap(5000)),
        "provider_cap_exceeded",
        {"provider": P, "year": "2026"},
    ),
    (
        "a service kept a money conflict for staff",
        add(
            "conflicts",
            Conflict(
                7,
                "conflict.settlement_of_reversed_deduction",
                "order",
                "o4",
                "兑付已支付但抵扣已撤销",
                "quota",
            ),
        ),
        "recorded_conflict",
        {"service": "quota", "order": "o4", "audit": "7"},
    ),
    (
        "a termination payments never answered",
        lambda s: setattr(s, "contracts", [dataclasses.replace(c, state="terminating") for c in s.contracts]),
        "termination_unanswered",
        {"order": "o2", "contract": "c-o2"},
    ),
    (
        "payouts still held after the termination request is over",
        lambda s: setattr(
            s, "plans", [dataclasses.replace(p, termination_request_id="rq-1") for p in s.plans]
        ),
        "payout_hold_outlived",
        {"order": "o5", "contract": "c-o5"},
    ),
    (
        "an order still frozen after the termination request is over",
        order("o5", termination_pending=True),
        "frozen_order_outlived",
        {"order": "o5"},
    ),
    (
        "a terminated plan's pending transfers are not its pending figure",
        lambda s: setattr(s, "remittances", [*s.remittances, Remittance("r4b", "o4", 300, "pending")]),
        "plan_pending_vs_remittances",
        {"order": "o4", "contract": "c-o4"},
    ),
    (
        "the cap's counters are not the reservations'",
        lambda s: setattr(s, "caps", [dataclasses.replace(s.caps[0], reserved_fen=0)]),
        "provider_cap_counters",
        {"provider": P, "year": "2026"},
    ),
]


@pytest.mark.parametrize(("case", "breaks", "code", "ids"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_broken_invariant_is_reported_with_the_ids_involved(
    case: str, breaks: Callable[[Snapshot], None], code: str, ids: dict[str, str]
) -> None:
    s = world()
    breaks(s)
    found = [v for v in check_all(s).violations if v.code == code]
    assert found, f"{case}: no {code} in {[str(v) for v in check_all(s).violations]}"
    assert any(v.ids == ids for v in found), [v.ids for v in found]
    assert all(k in str(found[0]) for k in found[0].ids.values())


def test_a_check_whose_service_could_not_be_read_is_skipped_not_failed() -> None:
    s = world()
    s.available = {"quota", "orders", "contracts"}
    s.plans = []  # payments not read: no rows of its own
    report = check_all(s)
    assert {name for name, _ in report.skipped} == {
        "payments",
        "payments against contracts",
        "order payments",
        "refunds",
        "settlements against deductions",
    }
    assert report.violations == []


def test_every_field_the_rows_read_is_a_column_of_the_services_models() -> None:
    """The rows name columns as the services' models spell them: a renamed column fails here,
    not as a field silently left at its default (``row`` ignores what it does not know)."""
    from sqlmodel import SQLModel

    from invariants.readers import TABLES

    for service, tables in TABLES.items():
        for table, _attr, cls, _order in tables:
            columns = {c.name for c in SQLModel.metadata.tables[table].columns}
            fields = {f.name for f in dataclasses.fields(cls)} - {"service"}  # the reader adds it
            assert fields <= columns, f"{service}.{table}: {sorted(fields - columns)} are not its columns"
    assert set(BALANCES) <= {f.name for f in dataclasses.fields(Voucher)}
    assert set(BALANCES) <= {f.name for f in dataclasses.fields(Movement)}


def test_urls_are_found_as_the_services_find_them() -> None:
    env = {"POSTGRES_URL": "postgresql://u@db:5432", "ORDERS_DATABASE_URL": "postgresql://u@other:5432/o"}
    urls = database_urls(env, overrides={"payments": "postgresql://u@p:5432/pay"})
    assert urls == {
        "quota": "postgresql://u@db:5432/quota",
        "orders": "postgresql://u@other:5432/o",
        "contracts": "postgresql://u@db:5432/contracts",
        "payments": "postgresql://u@p:5432/pay",
    }
    assert database_urls({}, "postgresql://x@h:1")["quota"] == "postgresql://x@h:1/quota"


# --- the command on the real tables ---------------------------------------------------------------


async def migrated(fresh_db: Callable[[str], object], service: str) -> str:
    url = await fresh_db(service)  # type: ignore[misc]
    await migrate(ROOT / "services" / service / service / "migrations", url)
    return url


async def test_the_command_reads_the_services_tables_and_exits_1_naming_what_is_broken(
    fresh_db: Callable[[str], object], capsys: pytest.CaptureFixture[str]
) -> None:
    urls = {s: await migrated(fresh_db, s) for s in ("quota", "orders", "contracts", "payments")}
    flags = [a for s, u in urls.items() for a in (f"--{s}-url", u)]
    assert await run(flags, env={}) == 0
    out = capsys.readouterr().out
    assert "invariants hold: 16 checks over 0 vouchers" in out

    quota = await connect(urls["quota"])
    try:
        await quota.execute(
            "INSERT INTO vouchers (id, voucher_no, enterprise_id, campaign_year, voucher_type, ratio_bp, "
            "valid_from, valid_to, total_fen, remaining_fen) "
            "VALUES ('v-1', 'SVC261201000000001', 'e-1', 2026, 'general', 5000, '2026-01-01', '2026-12-31', 5000000, 5000000)"
        )
        await quota.execute(
            "INSERT INTO voucher_movements (voucher_id, kind, amount_fen, total_fen, remaining_fen, reserved_fen, "
            "used_fen, settled_fen, expired_fen) VALUES ('v-1', 'issue', 5000000, 5000000, 5000000, 0, 0, 0, 0)"
        )
    finally:
        await quota.close()
    orders = await connect(urls["orders"])
    try:
        await orders.execute(
            "INSERT INTO orders (id, order_no, status, enterprise_id, enterprise_user_id, provider_id, provider_name, product_id, "
            "product_name, enterprise_name, category, voucher_type, price_fen, use_voucher, voucher_id, subsidy_fen, voucher_state, created_at) "
            "VALUES ('o-1', 'ORD261201000000001', 'awaiting_acceptance', 'e-1', 'u-1', 'p-1', '某机构', 'pr-1', '诊断', '某企业', "
            "'企业诊断', 'general', 7600, true, 'v-1', 3800, 'reserved', now())"
        )
    finally:
        await orders.close()
    assert await run(flags, env={}) == 1
    out = capsys.readouterr().out
    assert "[voucher_vs_live_orders]" in out and "voucher=v-1" in out and "orders=o-1" in out
    assert "[order_reservation_missing]" in out and "order=o-1" in out
    assert "invariant(s) broken" in out.splitlines()[-1]


async def test_a_database_not_created_yet_is_skipped_and_an_unreachable_server_exits_2(
    fresh_db: Callable[[str], object], postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    quota = await migrated(fresh_db, "quota")
    bare = await fresh_db("payments")  # type: ignore[misc]
    missing = postgres_server.rstrip("/") + "/no_such_database_for_invariants"
    flags = [
        "--quota-url",
        quota,
        "--payments-url",
        bare,
        "--orders-url",
        missing,
        "--contracts-url",
        missing,
    ]
    assert await run(flags, env={}) == 0
    out = capsys.readouterr().out
    assert "skipped orders: its database does not exist" in out
    assert "skipped payments: table payment_plans does not exist yet" in out
    assert "read: quota" in out.splitlines()[-1]

    assert await run(["--postgres-url", "postgresql://postgres@127.0.0.1:1"], env={}) == 2
    assert "cannot reach PostgreSQL" in capsys.readouterr().err


async def test_the_demo_data_of_make_run_passes_the_invariants(
    fresh_db: Callable[[str], object], capsys: pytest.CaptureFixture[str]
) -> None:
    """quota seeds the only demo rows the invariants read (the demo enterprise's approved
    general voucher and its issue movement); seeding twice changes nothing."""
    from common.db import Database
    from quota.seed import seed_demo  # the service's own seed, as `make run` runs it

    urls = {s: await migrated(fresh_db, s) for s in ("quota", "orders", "contracts", "payments")}
    db = Database(urls["quota"], pool_size=1)
    try:
        for _ in range(2):
            async with db.transaction() as session:
                await seed_demo(session)
    finally:
        await db.dispose()
    flags = [a for s, u in urls.items() for a in (f"--{s}-url", u)]
    assert await run(flags, env={}) == 0
    assert "invariants hold: 16 checks over 1 vouchers" in capsys.readouterr().out
