"""``voucher-demands``: operations on demands' database.

    voucher-demands check-invariants [--database-url URL]
    voucher-demands migrate [--lock-timeout 5s] [--statement-timeout 15min]

prints every broken demands invariant with the ids involved and exits 1; 0 when all hold.
It only reads. The invariants: a demand's response count is the number of its responses; a
published or closed-after-publishing demand has its 发布时间; a response answers a demand that
was published. ``migrate`` brings demands' database to this release's migration head
(common.migrate_command).
"""

from __future__ import annotations

import argparse
import asyncio

from sqlalchemy import text

from common.db import Database
from common.migrate_command import add_migrate_command, run_migrate_command

CHECKS: tuple[tuple[str, str], ...] = (
    (
        "response_count_matches",
        "SELECT d.id FROM demands d LEFT JOIN demand_responses r ON r.demand_id = d.id "
        "GROUP BY d.id HAVING d.response_count <> count(r.id)",
    ),
    ("published_has_time", "SELECT id FROM demands WHERE status = 'published' AND published_at IS NULL"),
    (
        "response_to_published",
        "SELECT r.id FROM demand_responses r JOIN demands d ON d.id = r.demand_id WHERE d.published_at IS NULL",
    ),
)


async def broken(url: str) -> list[tuple[str, list[str]]]:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            found = []
            for name, sql in CHECKS:
                ids = [str(row[0]) for row in (await session.execute(text(sql))).all()]
                if ids:
                    found.append((name, ids))
            return found
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-demands", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser("check-invariants", help="check demands' invariants (read-only)")
    check.add_argument("--database-url", default=None, help="demands' database (default: DEMANDS_ settings)")
    add_migrate_command(commands)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from demands.main import MIGRATIONS

        return run_migrate_command("demands", MIGRATIONS, args)
    if args.command != "check-invariants":
        parser.print_help()
        return 0
    url = args.database_url
    if url is None:
        from demands.config import Settings

        url = Settings().db_url
    problems = asyncio.run(broken(url))
    for name, ids in problems:
        print(f"BROKEN {name}: {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    if not problems:
        print("demands: every invariant holds")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
