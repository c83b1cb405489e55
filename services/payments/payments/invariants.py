"""payments' own invariants (DESIGN.md "Invariants"), checked on its database, read-only.

At every quiescent point, per order:
- ``paid + pending <= payable``, ``deposit + balance = payable`` (also CHECK constraints);
- the plan's ``paid`` is the sum of its confirmed remittances, ``pending`` of its pending ones;
- a terminated plan has nothing pending and a refund for every confirmed remittance (of the
  same amount); an open plan has no refund;
- at most one settlement (UNIQUE), equal to the contract's subsidy; a paid one only on a plan
  that exists; none for a subsidy of 0.

``voucher-payments check-invariants`` prints each broken one with its ids and exits non-zero;
the platform's ``voucher-invariants`` can call :func:`broken` on payments' database.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

CHECKS: tuple[tuple[str, str], ...] = (
    (
        "plan paid/pending exceed payable or stages do not add up",
        "SELECT order_id FROM payment_plans WHERE paid_fen + pending_fen > payable_fen "
        "OR deposit_fen + balance_fen <> payable_fen OR payable_fen <> total_fen - subsidy_fen",
    ),
    (
        "plan paid differs from its confirmed remittances",
        "SELECT p.order_id FROM payment_plans p LEFT JOIN remittances r "
        "ON r.order_id = p.order_id AND r.state = 'confirmed' "
        "GROUP BY p.order_id, p.paid_fen HAVING p.paid_fen <> coalesce(sum(r.amount_fen), 0)",
    ),
    (
        "plan pending differs from its pending remittances",
        "SELECT p.order_id FROM payment_plans p LEFT JOIN remittances r "
        "ON r.order_id = p.order_id AND r.state = 'pending' "
        "GROUP BY p.order_id, p.pending_fen HAVING p.pending_fen <> coalesce(sum(r.amount_fen), 0)",
    ),
    (
        "remittance without a plan",
        "SELECT r.id FROM remittances r LEFT JOIN payment_plans p ON p.order_id = r.order_id "
        "WHERE p.order_id IS NULL",
    ),
    (
        "terminated plan with a confirmed remittance and no matching refund",
        "SELECT r.id FROM remittances r JOIN payment_plans p ON p.order_id = r.order_id "
        "LEFT JOIN payment_refunds f ON f.remittance_id = r.id "
        "WHERE p.state = 'terminated' AND r.state = 'confirmed' "
        "AND (f.id IS NULL OR f.amount_fen <> r.amount_fen)",
    ),
    (
        "refund of a plan that is not terminated",
        "SELECT f.id FROM payment_refunds f LEFT JOIN payment_plans p ON p.order_id = f.order_id "
        "WHERE p.order_id IS NULL OR p.state <> 'terminated'",
    ),
    (
        "settlement differs from the contract's subsidy",
        "SELECT s.id FROM settlement_claims s LEFT JOIN payment_plans p ON p.order_id = s.order_id "
        "WHERE p.order_id IS NULL OR s.amount_fen <> p.subsidy_fen",
    ),
    (
        "unpaid settlement of a terminated plan not cancelled",
        "SELECT s.id FROM settlement_claims s JOIN payment_plans p ON p.order_id = s.order_id "
        "WHERE p.state = 'terminated' AND s.state NOT IN ('paid', 'cancelled')",
    ),
)


async def broken(session: AsyncSession) -> list[tuple[str, list[str]]]:
    """Every broken invariant with the ids involved (empty when all hold)."""
    found: list[tuple[str, list[str]]] = []
    for name, sql in CHECKS:
        ids = [str(row[0]) for row in await session.execute(text(sql))]
        if ids:
            found.append((name, ids))
    return found
