"""``voucher-dlq``: list and replay a service's dead letters.

    voucher-dlq list   --service identity                # RabbitMQ: <queue>.dlq
    voucher-dlq replay --service identity [--id ID ...]
    voucher-dlq list   --service identity --store database   # all-in-one: parked timers

The broker comes from AMQP_URL (and BUS_QUEUE_PREFIX), the database from
<SERVICE>_DATABASE_URL or POSTGRES_URL + the service name, as the services read them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict

from common.bus import dlq
from common.db import Database
from common.settings import database_in


def _database_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DATABASE_URL") or database_in(
        os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432"), service
    )


async def _run(args: argparse.Namespace) -> int:
    queue = os.environ.get("BUS_QUEUE_PREFIX", "") + args.service
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if args.store == "rabbitmq":
        if args.command == "list":
            items = await dlq.rabbit_list(amqp, queue)
        else:
            n = await dlq.rabbit_replay(amqp, queue, set(args.id) if args.id else None)
            print(json.dumps({"replayed": n}))
            return 0
    else:
        db = Database(_database_url(args.service), pool_size=1)
        try:
            if args.command == "list":
                items = await dlq.db_list(db)
            else:
                n = await dlq.db_replay(db, [int(i) for i in args.id] if args.id else None)
                print(json.dumps({"replayed": n}))
                return 0
        finally:
            await db.dispose()
    for item in items:
        row = asdict(item)
        if not args.full:
            row.pop("event")
        print(json.dumps(row, ensure_ascii=False))
    print(f"{len(items)} dead letter(s) for {args.service}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--service", required=True, help="the consuming service (its queue name)")
    parser.add_argument("--store", choices=["rabbitmq", "database"], default="rabbitmq")
    parser.add_argument("--id", action="append", help="replay only these (message ids or timer ids)")
    parser.add_argument("--full", action="store_true", help="print each event too")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
