"""DESIGN.md's invariants ("Invariants that must hold at every quiescent point") as pure
functions over rows: each takes a :class:`~invariants.rows.Snapshot` and returns the
violations it finds, each naming the ids involved. No I/O here (the readers are in
``readers.py``), so every violation is unit-tested with hand-made rows.

Each check declares the services whose rows it needs (:data:`CHECKS`); the runner skips a check
when one of them could not be read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from common.categories import GENERAL
from contracts.domain.contracts import State as ContractState
from invariants.rows import (
    Claim,
    Contract,
    Movement,
    Order,
    Plan,
    Reservation,
    Snapshot,
    Voucher,
)
from orders.domain import ENDED, SIGNED, Status
from payments import invariants as payments_invariants
from payments.domain.remittances import PlanState
from payments.domain.settlements import SettlementState
from quota import ledger
from quota.ledger import DEDUCTED, GIVEN_BACK, HELD
from quota.ledger import ReservationState as R

# The services' own vocabulary: orders' statuses (orders.domain), contracts' states
# (contracts.domain), quota's reservation states and movement arithmetic (quota.ledger),
# payments' states and its own invariants (payments.domain, payments.invariants).
BEFORE_SIGNING = frozenset({Status.AWAITING_ACCEPTANCE, Status.AWAITING_CONTRACT})
SERVICE_COMPLETE = frozenset({Status.COMPLETED, Status.EVALUATED})
SIGNED_CONTRACT = frozenset({ContractState.SIGNED, ContractState.TERMINATING, ContractState.TERMINATED})


@dataclass(frozen=True)
class Violation:
    code: str  # stable, snake_case: which invariant
    message: str
    ids: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.ids.items())
        return f"[{self.code}] {self.message}" + (f" ({where})" if where else "")


BALANCES = ledger.BALANCES


def _fen(amount: int) -> str:
    return f"{amount} fen"


# --- per voucher -----------------------------------------------------------------------------


def voucher_balances(s: Snapshot) -> list[Violation]:
    """total = remaining + reserved + used + expired, each >= 0, settled <= used."""
    out: list[Violation] = []
    for v in s.vouchers:
        ids = {"voucher": v.id}
        parts = v.remaining_fen + v.reserved_fen + v.used_fen + v.expired_fen
        if v.total_fen != parts:
            out.append(
                Violation(
                    "voucher_total",
                    f"total {v.total_fen} != remaining {v.remaining_fen} + reserved {v.reserved_fen} "
                    f"+ used {v.used_fen} + expired {v.expired_fen} (= {parts})",
                    ids,
                )
            )
        negative = [b for b in BALANCES if getattr(v, b) < 0]
        if negative:
            out.append(Violation("voucher_negative", f"negative balance(s): {', '.join(negative)}", ids))
        if v.settled_fen > v.used_fen:
            out.append(
                Violation("voucher_settled_above_used", f"settled {v.settled_fen} > used {v.used_fen}", ids)
            )
    return out


def apply_movement(b: dict[str, int], kind: str, amount: int) -> dict[str, int] | None:
    """The balances after one journal movement, by quota's own arithmetic (quota.ledger.MOVES);
    None: an unknown kind."""
    if kind not in ledger.MOVES:
        return None
    after = ledger.apply(ledger.Balances(**b), kind, amount)
    return {name: getattr(after, name) for name in BALANCES}


def voucher_journal(s: Snapshot) -> list[Violation]:
    """The journal adds up to the balances: replaying every movement in order gives each
    movement's recorded balances-after, and the last gives the voucher's balances."""
    out: list[Violation] = []
    by_voucher: dict[str, list[Movement]] = defaultdict(list)
    for m in s.movements:
        by_voucher[m.voucher_id].append(m)
    known = {v.id for v in s.vouchers}
    for voucher_id in sorted(set(by_voucher) - known):
        out.append(
            Violation("journal_orphan", "movements of a voucher that does not exist", {"voucher": voucher_id})
        )
    for v in s.vouchers:
        b = dict.fromkeys(BALANCES, 0)
        for m in sorted(by_voucher.get(v.id, []), key=lambda m: m.id):
            ids = {"voucher": v.id, "movement": str(m.id)} | ({"order": m.order_id} if m.order_id else {})
            if m.amount_fen < 0:
                out.append(Violation("journal_negative_amount", f"{m.kind} of {m.amount_fen}", ids))
            after = apply_movement(b, m.kind, m.amount_fen)
            if after is None:
                out.append(Violation("journal_unknown_kind", f"unknown movement kind {m.kind!r}", ids))
                break
            b = after
            recorded = {n: getattr(m, n) for n in BALANCES}
            if recorded != b:
                diff = ", ".join(
                    f"{n} {recorded[n]} (replayed {b[n]})" for n in BALANCES if recorded[n] != b[n]
                )
                out.append(Violation("journal_balances_after", f"{m.kind} records {diff}", ids))
                b = recorded  # follow the record, so one bad row is reported once
        stored = {n: getattr(v, n) for n in BALANCES}
        if stored != b:
            diff = ", ".join(f"{n} {stored[n]} (journal {b[n]})" for n in BALANCES if stored[n] != b[n])
            out.append(
                Violation(
                    "journal_mismatch",
                    f"the voucher's balances differ from its journal: {diff}",
                    {"voucher": v.id},
                )
            )
    return out


def voucher_reservations(s: Snapshot) -> list[Violation]:
    """quota's own reservations add up to the voucher: reserved = the held reservations,
    used = the committed and settled ones, settled = the settled ones."""
    out: list[Violation] = []
    held: Counter[str] = Counter()
    used: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    for r in s.reservations:
        if r.voucher_id is None:
            continue
        if r.state in HELD:
            held[r.voucher_id] += r.amount_fen
        elif r.state in DEDUCTED:
            used[r.voucher_id] += r.committed_fen
            if r.state == R.SETTLED:
                settled[r.voucher_id] += r.committed_fen
    for v in s.vouchers:
        ids = {"voucher": v.id}
        if held[v.id] != v.reserved_fen:
            out.append(
                Violation(
                    "voucher_reserved_vs_reservations",
                    f"reserved {v.reserved_fen} != its held reservations {held[v.id]}",
                    ids,
                )
            )
        if used[v.id] != v.used_fen:
            out.append(
                Violation(
                    "voucher_used_vs_reservations",
                    f"used {v.used_fen} != its committed reservations {used[v.id]}",
                    ids,
                )
            )
        if settled[v.id] != v.settled_fen:
            out.append(
                Violation(
                    "voucher_settled_vs_reservations",
                    f"settled {v.settled_fen} != its settled reservations {settled[v.id]}",
                    ids,
                )
            )
    return out


def order_subsidy(o: Order) -> int:
    """The subsidy an order holds on its voucher: the contract's once signed, else quota's
    reservation (as orders recorded it)."""
    if o.status in SIGNED and o.contract_subsidy_fen is not None:
        return o.contract_subsidy_fen
    return o.subsidy_fen


def voucher_live_orders(s: Snapshot) -> list[Violation]:
    """The subsidies of a voucher's live orders (as orders knows them) add up to reserved + used."""
    out: list[Violation] = []
    held: Counter[str] = Counter()
    members: dict[str, list[str]] = defaultdict(list)
    for o in s.orders:
        if o.voucher_id and o.use_voucher and (o.status in BEFORE_SIGNING or o.status in SIGNED):
            held[o.voucher_id] += order_subsidy(o)
            members[o.voucher_id].append(o.id)
    for v in s.vouchers:
        if held[v.id] != v.reserved_fen + v.used_fen:
            out.append(
                Violation(
                    "voucher_vs_live_orders",
                    f"reserved {v.reserved_fen} + used {v.used_fen} != the subsidies of its live orders {held[v.id]}",
                    {"voucher": v.id, "orders": ",".join(sorted(members[v.id])) or "-"},
                )
            )
    return out


# --- per order ------------------------------------------------------------------------------


def _by(items: Iterable[object], key: str) -> dict[str, object]:
    return {getattr(i, key): i for i in items}


def order_reservation(s: Snapshot) -> list[Violation]:
    """An order's reservation matches its state: ended => released or reversed; before
    signing with a voucher => reserved, the same amount; signed => committed = the contract's
    subsidy; an order behind quota's decision (still pending_voucher) is reported."""
    out: list[Violation] = []
    res: dict[str, Reservation] = _by(s.reservations, "order_id")  # type: ignore[assignment]
    contracts: dict[str, Contract] = _by(s.contracts, "order_id")  # type: ignore[assignment]
    for o in s.orders:
        r = res.get(o.id)
        ids = {"order": o.id} | ({"voucher": r.voucher_id} if r and r.voucher_id else {})
        state = r.state if r else "absent"
        if o.status in ENDED:
            if r is not None and r.voucher_id and r.state not in GIVEN_BACK:
                out.append(
                    Violation(
                        "ended_order_holds_voucher", f"order {o.status} but its reservation is {r.state}", ids
                    )
                )
        elif o.status == Status.PENDING_VOUCHER:
            if r is not None and r.state != R.DECIDING:
                out.append(
                    Violation(
                        "order_behind_quota", f"order still pending_voucher, quota decided {r.state}", ids
                    )
                )
        elif o.status in BEFORE_SIGNING:
            if o.use_voucher and o.subsidy_fen > 0:
                if r is None or r.state not in HELD:
                    out.append(
                        Violation(
                            "order_reservation_missing",
                            f"order {o.status} with subsidy {o.subsidy_fen} but its reservation is {state}",
                            ids,
                        )
                    )
                elif r.amount_fen != o.subsidy_fen:
                    out.append(
                        Violation(
                            "order_reservation_amount",
                            f"order subsidy {o.subsidy_fen} != reserved {r.amount_fen}",
                            ids,
                        )
                    )
                elif r.voucher_id != o.voucher_id:
                    out.append(
                        Violation(
                            "order_reservation_voucher",
                            f"order names voucher {o.voucher_id}, quota reserved on {r.voucher_id}",
                            ids,
                        )
                    )
            elif r is not None and r.voucher_id and r.state in HELD | DEDUCTED and r.amount_fen > 0:
                out.append(
                    Violation(
                        "order_reservation_unexpected",
                        f"order without subsidy holds a {r.state} reservation of {r.amount_fen}",
                        ids,
                    )
                )
        elif o.status in SIGNED:
            c = contracts.get(o.id)
            subsidy = c.subsidy_fen if c is not None else o.contract_subsidy_fen
            if subsidy is None:
                continue  # reported by order_contract
            if r is not None and r.voucher_id and r.state not in GIVEN_BACK:
                if r.state not in DEDUCTED:
                    out.append(
                        Violation(
                            "signed_order_not_committed",
                            f"order {o.status} but its reservation is {r.state}",
                            ids,
                        )
                    )
                elif r.committed_fen != subsidy:
                    out.append(
                        Violation(
                            "committed_vs_contract_subsidy",
                            f"committed {r.committed_fen} != the contract's subsidy {subsidy}",
                            ids,
                        )
                    )
            elif subsidy > 0:
                out.append(
                    Violation(
                        "signed_subsidy_without_deduction",
                        f"the contract's subsidy is {subsidy} but the reservation is {state}",
                        ids,
                    )
                )
    return out


def order_contract(s: Snapshot) -> list[Violation]:
    """orders and contracts agree: a signed contract's order is signed (or completed) with the
    same amounts; a voided contract's order is cancelled; a terminated one's terminated; and
    a signed order has a signed contract."""
    out: list[Violation] = []
    orders: dict[str, Order] = _by(s.orders, "id")  # type: ignore[assignment]
    contracts: dict[str, Contract] = _by(s.contracts, "order_id")  # type: ignore[assignment]
    for c in s.contracts:
        o = orders.get(c.order_id)
        ids = {"order": c.order_id, "contract": c.id}
        if o is None:
            out.append(
                Violation("contract_without_order", "a contract for an order orders does not know", ids)
            )
            continue
        if c.state == ContractState.SIGNED and o.status not in SIGNED:
            out.append(
                Violation("signed_contract_order_status", f"contract signed but the order is {o.status}", ids)
            )
        if c.state == ContractState.VOIDED and o.status != Status.CANCELLED:
            out.append(
                Violation("voided_contract_order_status", f"contract voided but the order is {o.status}", ids)
            )
        if c.state == ContractState.TERMINATED and o.status != Status.TERMINATED:
            out.append(
                Violation(
                    "terminated_contract_order_status",
                    f"contract terminated but the order is {o.status}",
                    ids,
                )
            )
        if c.state in (ContractState.SIGNED, ContractState.TERMINATED):
            if c.total_fen - c.subsidy_fen != c.payable_fen or c.deposit_fen + c.balance_fen != c.payable_fen:
                out.append(
                    Violation(
                        "contract_amounts",
                        f"total {c.total_fen} - subsidy {c.subsidy_fen} != payable {c.payable_fen} or deposit {c.deposit_fen} + balance {c.balance_fen} != payable",
                        ids,
                    )
                )
            if c.subsidy_fen > c.reserved_fen:
                out.append(
                    Violation(
                        "contract_subsidy_above_reserved",
                        f"subsidy {c.subsidy_fen} > reserved {c.reserved_fen}",
                        ids,
                    )
                )
            if o.status in SIGNED and (o.contract_subsidy_fen, o.contract_payable_fen) != (
                c.subsidy_fen,
                c.payable_fen,
            ):
                out.append(
                    Violation(
                        "order_contract_amounts",
                        f"order shows subsidy {o.contract_subsidy_fen} payable {o.contract_payable_fen}, contract {c.subsidy_fen} / {c.payable_fen}",
                        ids,
                    )
                )
    for o in s.orders:
        if o.status in SIGNED:
            found = contracts.get(o.id)
            if found is None or found.state != ContractState.SIGNED:
                out.append(
                    Violation(
                        "signed_order_without_signed_contract",
                        f"order {o.status} but its contract is {found.state if found else 'absent'}",
                        {"order": o.id},
                    )
                )
    return out


def order_terminated(s: Snapshot) -> list[Violation]:
    """A terminated contract's deduction is reversed (never a settled one: that termination
    must have been refused)."""
    out: list[Violation] = []
    res: dict[str, Reservation] = _by(s.reservations, "order_id")  # type: ignore[assignment]
    for c in s.contracts:
        r = res.get(c.order_id)
        if c.state == ContractState.TERMINATED and r is not None and r.voucher_id and r.state in DEDUCTED:
            out.append(
                Violation(
                    "terminated_contract_deduction",
                    f"contract terminated but its deduction is {r.state}",
                    {"order": c.order_id, "contract": c.id, "voucher": r.voucher_id},
                )
            )
    return out


# --- payments against contracts ---------------------------------------------------------------------


def _violations(found: Iterable[payments_invariants.Finding]) -> list[Violation]:
    return [Violation(f.code, f.message, f.ids) for f in found]


def plan_money(s: Snapshot) -> list[Violation]:
    """payments' own invariants over its plans, remittances and settlements
    (payments.invariants: the checks ``voucher-payments check-invariants`` runs)."""
    return _violations(
        [
            *payments_invariants.plan_money(s.plans, s.remittances),
            *payments_invariants.settlements(s.plans, s.claims),
        ]
    )


def plan_contract(s: Snapshot) -> list[Violation]:
    """Every signed (or terminated) contract has a plan with its amounts, and a plan is
    terminated exactly when its contract is."""
    out: list[Violation] = []
    plans: dict[str, Plan] = _by(s.plans, "order_id")  # type: ignore[assignment]
    contracts: dict[str, Contract] = _by(s.contracts, "order_id")  # type: ignore[assignment]
    fields = ("total_fen", "subsidy_fen", "payable_fen", "deposit_fen", "balance_fen")
    for c in s.contracts:
        if c.state not in SIGNED_CONTRACT:
            continue
        p = plans.get(c.order_id)
        ids = {"order": c.order_id, "contract": c.id}
        if p is None:
            out.append(
                Violation("signed_contract_without_plan", f"contract {c.state} but payments has no plan", ids)
            )
            continue
        diff = [
            f"{f} {getattr(p, f)} (contract {getattr(c, f)})"
            for f in fields
            if getattr(p, f) != getattr(c, f)
        ]
        if diff:
            out.append(
                Violation("plan_vs_contract", "the plan differs from the contract: " + ", ".join(diff), ids)
            )
        if c.state != ContractState.TERMINATING and (c.state == ContractState.TERMINATED) != (
            p.state == PlanState.TERMINATED
        ):
            out.append(Violation("plan_termination", f"contract {c.state} but the plan is {p.state}", ids))
    for p in s.plans:
        found = contracts.get(p.order_id)
        if found is None or found.state not in SIGNED_CONTRACT:
            out.append(
                Violation(
                    "plan_without_signed_contract",
                    f"a plan whose contract is {found.state if found else 'absent'}",
                    {"order": p.order_id, "contract": p.contract_id},
                )
            )
    return out


def order_payments(s: Snapshot) -> list[Violation]:
    """What orders shows as paid is what payments confirmed."""
    out: list[Violation] = []
    plans: dict[str, Plan] = _by(s.plans, "order_id")  # type: ignore[assignment]
    for o in s.orders:
        p = plans.get(o.id)
        if o.status in SIGNED and p is not None and p.paid_fen != o.paid_fen:
            out.append(
                Violation(
                    "order_paid_vs_plan",
                    f"order shows paid {o.paid_fen}, payments confirmed {p.paid_fen}",
                    {"order": o.id},
                )
            )
    return out


def refunds(s: Snapshot) -> list[Violation]:
    """A terminated plan owes back every confirmed remittance, once; no other refund exists
    (payments.invariants)."""
    return _violations(payments_invariants.refunds(s.plans, s.remittances, s.refunds))


# --- settlements against deductions --------------------------------------------------------------------


def settlements(s: Snapshot) -> list[Violation]:
    """At most one settlement per order, equal to the committed subsidy; paid exactly when
    quota settled the deduction; none left open on a terminated contract; one opened for
    every completed order with a subsidy."""
    out: list[Violation] = []
    res: dict[str, Reservation] = _by(s.reservations, "order_id")  # type: ignore[assignment]
    contracts: dict[str, Contract] = _by(s.contracts, "order_id")  # type: ignore[assignment]
    per_order: dict[str, list[Claim]] = defaultdict(list)
    for cl in s.claims:
        per_order[cl.order_id].append(cl)
    for order_id, claims in per_order.items():
        if len(claims) > 1:
            out.append(
                Violation(
                    "settlement_twice",
                    f"{len(claims)} settlement claims",
                    {"order": order_id, "claims": ",".join(c.id for c in claims)},
                )
            )
    for cl in s.claims:
        r = res.get(cl.order_id)
        c = contracts.get(cl.order_id)
        ids = {"order": cl.order_id, "claim": cl.id} | (
            {"voucher": r.voucher_id} if r and r.voucher_id else {}
        )
        committed = r.committed_fen if r is not None and r.state in DEDUCTED else None
        if cl.state != SettlementState.CANCELLED and committed != cl.amount_fen:
            out.append(
                Violation(
                    "settlement_vs_deduction",
                    f"claim of {cl.amount_fen} but the committed subsidy is {committed if committed is not None else 'none'} ({r.state if r else 'no reservation'})",
                    ids,
                )
            )
        if c is not None and cl.amount_fen != c.subsidy_fen:
            out.append(
                Violation(
                    "settlement_vs_contract",
                    f"claim of {cl.amount_fen} but the contract's subsidy is {c.subsidy_fen}",
                    ids,
                )
            )
        if cl.state == SettlementState.PAID and (r is None or r.state != R.SETTLED):
            out.append(
                Violation(
                    "paid_settlement_not_settled",
                    f"claim paid but quota's deduction is {r.state if r else 'absent'}",
                    ids,
                )
            )
        if c is not None and c.state == ContractState.TERMINATED and cl.state != SettlementState.CANCELLED:
            out.append(
                Violation(
                    "settlement_of_terminated_contract", f"claim {cl.state} on a terminated contract", ids
                )
            )
    paid = {cl.order_id for cl in s.claims if cl.state == SettlementState.PAID}
    for r in s.reservations:
        if r.state == R.SETTLED and r.order_id not in paid:
            out.append(
                Violation(
                    "settled_without_paid_settlement",
                    "quota settled the deduction but no claim is paid",
                    {"order": r.order_id, "voucher": r.voucher_id or "-"},
                )
            )
    for o in s.orders:
        c = contracts.get(o.id)
        if o.status in SERVICE_COMPLETE and c is not None and c.subsidy_fen > 0 and not per_order.get(o.id):
            out.append(
                Violation(
                    "settlement_missing",
                    f"order {o.status} with a subsidy of {c.subsidy_fen} has no settlement claim",
                    {"order": o.id},
                )
            )
    return out


def recorded_conflicts(s: Snapshot) -> list[Violation]:
    """No money event was kept as a conflict: each one (a payout for a reversed deduction, a
    completion after an accepted termination...) is a finding until staff resolve it."""
    return [
        Violation(
            "recorded_conflict",
            f"{c.service} recorded {c.action}: {c.reason or ''}",
            {"service": c.service, c.target_type or "target": c.target_id, "audit": str(c.id)},
        )
        for c in s.conflicts
    ]


def terminations_answered(s: Snapshot) -> list[Violation]:
    """A termination asked of payments and orders is answered and ends: no contract stays
    ``terminating``, and no payout hold or frozen order outlives its request."""
    out = [
        Violation(
            "termination_unanswered",
            "contract terminating: payments or orders has not answered its termination request",
            {"order": c.order_id, "contract": c.id},
        )
        for c in s.contracts
        if c.state == ContractState.TERMINATING
    ]
    asked = {c.order_id for c in s.contracts if c.state == ContractState.TERMINATING}
    if "payments" in s.available:
        out += [
            Violation(
                "payout_hold_outlived",
                "payouts held for a termination request that is over",
                {"order": p.order_id, "contract": p.contract_id},
            )
            for p in s.plans
            if p.termination_request_id and p.state != PlanState.TERMINATED and p.order_id not in asked
        ]
    if "orders" in s.available:
        out += [
            Violation(
                "frozen_order_outlived",
                f"order {o.status} frozen for a termination request that is over",
                {"order": o.id},
            )
            for o in s.orders
            if o.termination_pending and o.status not in ENDED and o.id not in asked
        ]
    return out


# --- per enterprise and campaign; per provider and year -------------------------------------------


def tier_amount(s: Snapshot, year: int, designation: str | None) -> int | None:
    for campaign in s.campaigns:
        if campaign.year != year:
            continue
        for t in campaign.tiers:
            if designation is not None and (
                designation == t.get("label") or designation in t.get("designations", [])
            ):
                return int(t["amount_fen"])
    return None


def general_vouchers(s: Snapshot) -> list[Violation]:
    """One general voucher per enterprise and campaign, its total its tier's amount."""
    out: list[Violation] = []
    seen: dict[tuple[str, int], list[Voucher]] = defaultdict(list)
    for v in s.vouchers:
        if v.voucher_type == GENERAL:
            seen[(v.enterprise_id, v.campaign_year)].append(v)
    for (enterprise_id, year), found in seen.items():
        if len(found) > 1:
            out.append(
                Violation(
                    "general_voucher_twice",
                    f"{len(found)} general vouchers in campaign {year}",
                    {"enterprise": enterprise_id, "vouchers": ",".join(v.id for v in found)},
                )
            )
    issued_by = {a.voucher_id: a for a in s.applications if a.voucher_id}
    for v in s.vouchers:
        if v.voucher_type != GENERAL:
            continue
        app = issued_by.get(v.id)
        expected = (
            app.tier_fen if app is not None and app.tier_fen else tier_amount(s, v.campaign_year, v.tier)
        )
        if expected is None:
            continue
        if v.total_fen != expected:
            out.append(
                Violation(
                    "general_voucher_tier",
                    f"total {v.total_fen} != its tier's amount {expected} ({v.tier})",
                    {"enterprise": v.enterprise_id, "voucher": v.id},
                )
            )
    return out


def provider_caps(s: Snapshot) -> list[Violation]:
    """Per provider and year: reserved + used general subsidies <= the provider's cap, and the
    cap's counters are the reservations'."""
    out: list[Violation] = []
    reserved: Counter[tuple[str, int]] = Counter()
    used: Counter[tuple[str, int]] = Counter()
    for r in s.reservations:
        if r.cap_year is None or r.voucher_type != GENERAL:
            continue
        key = (r.provider_id, r.cap_year)
        if r.state in HELD:
            reserved[key] += r.amount_fen
        elif r.state in DEDUCTED:
            used[key] += r.committed_fen
    caps = {(c.provider_id, c.year): c for c in s.caps}
    for key in sorted(set(reserved) | set(used) | set(caps)):
        provider_id, year = key
        cap = caps.get(key)
        limit = cap.cap_fen if cap is not None else s.default_cap_fen
        ids = {"provider": provider_id, "year": str(year)}
        if reserved[key] + used[key] > limit:
            out.append(
                Violation(
                    "provider_cap_exceeded", f"reserved {reserved[key]} + used {used[key]} > cap {limit}", ids
                )
            )
        if cap is not None and (cap.reserved_fen, cap.used_fen) != (reserved[key], used[key]):
            out.append(
                Violation(
                    "provider_cap_counters",
                    f"cap row reserved {cap.reserved_fen} used {cap.used_fen}, reservations {reserved[key]} / {used[key]}",
                    ids,
                )
            )
        if cap is not None and cap.reserved_fen + cap.used_fen > cap.cap_fen:
            out.append(
                Violation(
                    "provider_cap_row_exceeded",
                    f"cap row reserved {cap.reserved_fen} + used {cap.used_fen} > {cap.cap_fen}",
                    ids,
                )
            )
    return out


Check = Callable[[Snapshot], list[Violation]]

# (name, the services whose rows it reads, the check)
CHECKS: tuple[tuple[str, tuple[str, ...], Check], ...] = (
    ("voucher balances", ("quota",), voucher_balances),
    ("voucher journal", ("quota",), voucher_journal),
    ("voucher reservations", ("quota",), voucher_reservations),
    ("voucher live orders", ("quota", "orders"), voucher_live_orders),
    ("order reservation", ("quota", "orders", "contracts"), order_reservation),
    ("order contract", ("orders", "contracts"), order_contract),
    ("terminated deductions", ("quota", "contracts"), order_terminated),
    ("payments", ("payments",), plan_money),
    ("payments against contracts", ("payments", "contracts"), plan_contract),
    ("order payments", ("orders", "payments"), order_payments),
    ("refunds", ("payments",), refunds),
    ("settlements against deductions", ("quota", "contracts", "orders", "payments"), settlements),
    ("general voucher per enterprise and campaign", ("quota",), general_vouchers),
    ("provider caps", ("quota",), provider_caps),
    ("termination requests answered", ("contracts",), terminations_answered),
    ("recorded money conflicts", (), recorded_conflicts),
)


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (check, missing services)

    @property
    def ok(self) -> bool:
        return not self.violations


def check_all(s: Snapshot) -> Report:
    report = Report()
    for name, needs, check in CHECKS:
        missing = tuple(n for n in needs if n not in s.available)
        if missing:
            report.skipped.append((name, missing))
            continue
        report.ran.append(name)
        report.violations.extend(check(s))
    return report


__all__ = ["CHECKS", "Report", "Violation", "check_all"]
