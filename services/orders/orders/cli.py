"""``voucher-orders``: read-only looks at orders's database from a shell (ops).

- ``voucher-orders show ORDER`` (id or ORD number): the order, its voucher and money, and its
  timeline (who did what, when);
- ``voucher-orders migrate [--lock-timeout 5s] [--statement-timeout 15min]``: orders's
  database to this release's migration head (common.migrate_command; the migration Job);
- ``voucher-orders stalled [--minutes 10]``: orders still waiting for quota's answer
  (``pending_voucher``) longer than that: the reservation event is late or parked (see the
  DLQ CLI), and the order waits until it comes (or its acceptance time-out cancels it).

The database is ``ORDERS_DATABASE_URL`` (else ``POSTGRES_URL`` + ``/orders``) or
``--database-url``. Exit 0 when found / nothing stalled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, or_, select

from common.db import Database
from common.migrate_command import add_migrate_command, run_migrate_command
from common.money import format_yuan
from common.numbers import format_datetime
from common.timers import utcnow
from orders.config import Settings
from orders.domain import STATUS_LABELS, Status
from orders.models import Order, OrderStep


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voucher-orders", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="orders's database (else ORDERS_DATABASE_URL / POSTGRES_URL)")
    sub = p.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="an order and its timeline")
    show.add_argument("order", help="the order's id or its ORD number")
    stalled = sub.add_parser("stalled", help="orders waiting for quota's answer too long")
    stalled.add_argument("--minutes", type=float, default=10.0)
    add_migrate_command(sub, database_url_option=False)  # the top-level --database-url
    return p


def _line(order: Order) -> str:
    label = STATUS_LABELS[Status(order.status)]
    return (
        f"{order.order_no}  {order.id}  {order.status} ({label})  {order.product_name}  "
        f"金额 {format_yuan(order.price_fen)}元  补贴 {format_yuan(order.current_subsidy_fen)}元  "
        f"下单 {format_datetime(order.created_at or utcnow())}"
    )


async def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = args.database_url or Settings(environment="development").db_url
    db = Database(url, pool_size=1)
    try:
        async with db.session() as s:
            if args.command == "show":
                order = (
                    await s.exec(
                        select(Order).where(
                            or_(col(Order.id) == args.order, col(Order.order_no) == args.order)
                        )
                    )
                ).first()
                if order is None:
                    print(f"no order {args.order}")
                    return 1
                print(_line(order))
                print(
                    f"  voucher {order.voucher_no or '-'} {order.voucher_state}; paid {format_yuan(order.paid_fen)}元"
                    f" of {format_yuan(order.payable_fen)}元; contract {order.contract_id or '-'}"
                )
                steps = await s.exec(
                    select(OrderStep).where(col(OrderStep.order_id) == order.id).order_by(col(OrderStep.id))
                )
                for step in steps:
                    amount = f" {format_yuan(step.amount_fen)}元" if step.amount_fen is not None else ""
                    detail = f" ({step.detail})" if step.detail else ""
                    print(
                        f"  {format_datetime(step.at or utcnow())}  {step.label}{amount}{detail}  [{step.actor}]"
                    )
                return 0
            since = utcnow() - timedelta(minutes=args.minutes)
            rows = (
                await s.exec(
                    select(Order)
                    .where(col(Order.status) == Status.PENDING_VOUCHER.value, col(Order.created_at) < since)
                    .order_by(col(Order.created_at))
                )
            ).all()
            for order in rows:
                print(_line(order))
            print(f"{len(rows)} order(s) waiting for quota longer than {args.minutes:g} minutes")
            return 1 if rows else 0
    finally:
        await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        from orders.main import MIGRATIONS

        return run_migrate_command("orders", MIGRATIONS, args)
    return asyncio.run(run(argv))


if __name__ == "__main__":
    raise SystemExit(main())
