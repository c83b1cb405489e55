"""``voucher-catalog``: operations on catalog's database.

    voucher-catalog migrate [--lock-timeout 5s] [--statement-timeout 15min]

brings catalog's database to this release's migration head (common.migrate_command).
"""

from __future__ import annotations

import argparse

from common.migrate_command import add_migrate_command, run_migrate_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-catalog", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    add_migrate_command(commands)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from catalog.main import MIGRATIONS

        return run_migrate_command("catalog", MIGRATIONS, args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
