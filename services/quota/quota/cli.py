"""``voucher-quota``: operations on quota's database.

    voucher-quota import-designations FILE [--database-url URL]
    voucher-quota migrate [--lock-timeout 5s] [--statement-timeout 15min]

imports a designation list (CSV or XLSX of ``uscc, designation``) the way
``POST /admin/designations/import`` does, with a progress bar, and prints the report;
``migrate`` brings quota's database to this release's migration head (common.migrate_command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tqdm import tqdm

from common.db import Database
from common.errors import Problem
from common.migrate_command import add_migrate_command, run_migrate_command
from common.numbers import shanghai_now
from quota.config import Settings
from quota.domain.designations import known_designations
from quota.service.campaigns import campaign_for
from quota.service.designations import import_rows, rows_of


def _count_rows(path: Path) -> int | None:
    if path.suffix.lower() == ".xlsx":
        return None  # read-only workbooks do not know their length cheaply
    with path.open("rb") as f:
        return sum(1 for _ in f)


async def import_designations(path: Path, database_url: str | None) -> int:
    settings = Settings(database_url=database_url) if database_url else Settings()
    db = Database(settings.db_url, pool_size=1)
    try:
        async with db.transaction() as session:
            campaign = await campaign_for(session, shanghai_now().date())
            if campaign is None:
                print("没有年度活动：请先创建活动（PUT /admin/campaigns/{year}）", file=sys.stderr)
                return 2
            known = known_designations(campaign.tiers)
            with (
                path.open("rb") as raw,
                tqdm(total=_count_rows(path), unit="行", desc="导入企业划型名单") as bar,
            ):
                try:
                    report = await import_rows(session, rows_of(raw, path.name), known, progress=bar.update)
                except Problem as exc:  # an unreadable file: say why, import nothing
                    print(exc.detail, file=sys.stderr)
                    return 2
    finally:
        await db.dispose()
    print(
        json.dumps(
            {
                "accepted": report.accepted,
                "rejected_total": report.rejected_total,
                "rejected": report.rejected,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-quota", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import-designations", help="导入企业划型名单 (CSV 或 XLSX: uscc, designation)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--database-url", default=None, help="quota's database (default: from QUOTA_* settings)")
    add_migrate_command(commands)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from quota.main import MIGRATIONS

        return run_migrate_command("quota", MIGRATIONS, args)
    if args.command == "import-designations":
        if not args.file.is_file():
            print(f"文件不存在：{args.file}", file=sys.stderr)
            return 2
        return asyncio.run(import_designations(args.file, args.database_url))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
