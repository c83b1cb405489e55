"""``voucher-payments``: operations on payments's database.

    voucher-payments check-invariants [--database-url URL]
    voucher-payments migrate [--lock-timeout 5s] [--statement-timeout 15min]

prints every broken payments invariant (payments.invariants), one line each with the ids involved, and
exits 1; 0 when all hold. It only reads. ``migrate`` brings payments' database to this
release's migration head (common.migrate_command).
"""

from __future__ import annotations

import argparse
import asyncio

from common.db import Database
from common.migrate_command import add_migrate_command, run_migrate_command


async def _check(url: str) -> int:
    from payments.invariants import broken

    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            problems = await broken(session)
    finally:
        await db.dispose()
    for finding in problems:
        print(f"BROKEN {finding}")
    if not problems:
        print("payments: every invariant holds")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-payments", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser("check-invariants", help="check payments' invariants (read-only)")
    check.add_argument(
        "--database-url", default=None, help="payments' database (default: from PAYMENTS_ settings)"
    )
    add_migrate_command(commands)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from payments.main import MIGRATIONS

        return run_migrate_command("payments", MIGRATIONS, args)
    if args.command == "check-invariants":
        url = args.database_url
        if url is None:
            from payments.config import Settings

            url = Settings().db_url
        return asyncio.run(_check(url))
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
