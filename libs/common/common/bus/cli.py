"""``voucher-dlq``: list, inspect, export, replay and discard a service's dead letters; list,
inspect and move the events nobody was bound to.

    voucher-dlq list    --service identity                # RabbitMQ: <queue>.dlq
    voucher-dlq inspect --service identity --id ID        # one of them, with its event
    voucher-dlq replay  --service identity [--id ID ...]
    voucher-dlq export  --service identity [--out FILE]   # JSON lines, events included; kept
    voucher-dlq discard --service identity (--id ID ... | --all)   # removed, printed
    voucher-dlq list    --service identity --store database   # all-in-one: parked timers
    voucher-dlq list    --unrouted                         # voucher.events.unrouted
    voucher-dlq inspect --unrouted --id ID
    voucher-dlq move    --unrouted [--id ID ...]           # back to the exchange

The broker comes from AMQP_URL (and BUS_EXCHANGE, BUS_QUEUE_PREFIX), the database from
<SERVICE>_DATABASE_URL or POSTGRES_URL + the service name, as the services read them. A
replay refuses an event older than BUS_REPLAY_WINDOW_DAYS (it stays parked; the reason is
printed and the exit status is 1). ``export`` writes every parked message with its event as
JSON lines (to ``--out`` or stdout) and removes nothing; ``discard`` removes the messages named
by ``--id``, or all of them with ``--all`` (never by default), and prints each with its event
(then ``{"discarded": n}``). Both also take ``--unrouted``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict

from common.bus import dlq
from common.bus.rabbitmq import dead_letter_queue, unrouted_queue
from common.bus.retention import RetentionSettings
from common.db import Database
from common.settings import database_in


def _database_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DATABASE_URL") or database_in(
        os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432"), service
    )


def _print_items(items: list[dlq.DeadLetter], full: bool, what: str) -> None:
    for item in items:
        row = asdict(item)
        if not full:
            row.pop("event")
        print(json.dumps(row, ensure_ascii=False))
    print(f"{len(items)} {what}", file=sys.stderr)


def _print_replayed(n: int, refused: list[dlq.Refused]) -> int:
    for r in refused:
        print(json.dumps({"refused": r.id, "reason": r.reason}, ensure_ascii=False))
        print(f"{r.id}: {r.reason}", file=sys.stderr)
    print(json.dumps({"replayed": n}))
    return 1 if refused else 0


def _export(items: list[dlq.DeadLetter], out: str | None, what: str) -> None:
    lines = "".join(json.dumps(asdict(item), ensure_ascii=False) + "\n" for item in items)
    if out and out != "-":
        with open(out, "w", encoding="utf-8") as f:
            f.write(lines)
    else:
        sys.stdout.write(lines)
    print(f"{len(items)} {what} exported" + (f" to {out}" if out and out != "-" else ""), file=sys.stderr)


def _print_discarded(items: list[dlq.DeadLetter]) -> int:
    for item in items:
        print(json.dumps(asdict(item), ensure_ascii=False))
    print(json.dumps({"discarded": len(items)}))
    return 0


async def _discard_or_export(args: argparse.Namespace, amqp: str) -> int:
    """``export`` and ``discard``, for a service's dead letters or the unrouted events."""
    if args.command == "discard" and not (args.id or args.all):
        print("discard removes for good: name the messages (--id ...) or say --all", file=sys.stderr)
        return 2
    ids = set(args.id) if args.id else None
    if args.unrouted:
        exchange = os.environ.get("BUS_EXCHANGE", "voucher.events")
        if args.command == "export":
            _export(await dlq.unrouted_list(amqp, exchange, limit=100000), args.out, "unrouted event(s)")
            return 0
        return _print_discarded(await dlq.rabbit_discard(amqp, unrouted_queue(exchange), ids))
    queue = os.environ.get("BUS_QUEUE_PREFIX", "") + args.service
    if args.store == "rabbitmq":
        if args.command == "export":
            _export(
                await dlq.rabbit_list(amqp, queue, limit=100000),
                args.out,
                f"dead letter(s) of {args.service}",
            )
            return 0
        return _print_discarded(await dlq.rabbit_discard(amqp, dead_letter_queue(queue), ids))
    db = Database(_database_url(args.service), pool_size=1)
    try:
        if args.command == "export":
            _export(await dlq.db_list(db), args.out, f"dead letter(s) of {args.service}")
            return 0
        timer_ids = [int(i) for i in ids] if ids else None
        return _print_discarded(await dlq.db_discard(db, timer_ids))
    finally:
        await db.dispose()


async def _unrouted(args: argparse.Namespace, amqp: str) -> int:
    exchange = os.environ.get("BUS_EXCHANGE", "voucher.events")
    if args.command == "list":
        _print_items(
            await dlq.unrouted_list(amqp, exchange), args.full, f"unrouted event(s) in {exchange}.unrouted"
        )
    elif args.command == "inspect":
        item = await dlq.rabbit_inspect(amqp, unrouted_queue(exchange), args.id[0])
        if item is None:
            print(f"no message {args.id[0]} in {unrouted_queue(exchange)}", file=sys.stderr)
            return 1
        print(json.dumps(asdict(item), ensure_ascii=False))
    elif args.command == "move":
        n = await dlq.unrouted_move(amqp, exchange, set(args.id) if args.id else None)
        print(json.dumps({"moved": n}))
    else:
        print(
            "replay is for a service's DLQ; unrouted events are moved (voucher-dlq move --unrouted)",
            file=sys.stderr,
        )
        return 2
    return 0


async def _run(args: argparse.Namespace) -> int:
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if args.command == "inspect" and not args.id:
        print("inspect needs --id", file=sys.stderr)
        return 2
    if args.unrouted and args.command not in ("export", "discard"):
        return await _unrouted(args, amqp)
    if not args.service and not args.unrouted:
        print("--service (or --unrouted) is required", file=sys.stderr)
        return 2
    if args.command in ("export", "discard"):
        return await _discard_or_export(args, amqp)
    if args.command == "move":
        print("move is for unrouted events (--unrouted); a service's DLQ is replayed", file=sys.stderr)
        return 2
    window = RetentionSettings().replay_window_days
    queue = os.environ.get("BUS_QUEUE_PREFIX", "") + args.service
    refused: list[dlq.Refused] = []
    if args.store == "rabbitmq":
        if args.command == "list":
            items = await dlq.rabbit_list(amqp, queue)
        elif args.command == "inspect":
            item = await dlq.rabbit_inspect(amqp, dead_letter_queue(queue), args.id[0])
            if item is None:
                print(f"no message {args.id[0]} in {dead_letter_queue(queue)}", file=sys.stderr)
                return 1
            print(json.dumps(asdict(item), ensure_ascii=False))
            return 0
        else:
            ids = set(args.id) if args.id else None
            n = await dlq.rabbit_replay(amqp, queue, ids, window_days=window, refused=refused)
            return _print_replayed(n, refused)
    else:
        db = Database(_database_url(args.service), pool_size=1)
        try:
            if args.command == "list":
                items = await dlq.db_list(db)
            elif args.command == "inspect":
                found = [i for i in await dlq.db_list(db) if i.id == args.id[0]]
                if not found:
                    print(f"no dead letter {args.id[0]} in {args.service}'s database", file=sys.stderr)
                    return 1
                print(json.dumps(asdict(found[0]), ensure_ascii=False))
                return 0
            else:
                replay_ids = [int(i) for i in args.id] if args.id else None
                n = await dlq.db_replay(db, replay_ids, window_days=window, refused=refused)
                return _print_replayed(n, refused)
        finally:
            await db.dispose()
    _print_items(items, args.full, f"dead letter(s) for {args.service}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "inspect", "replay", "move", "export", "discard"])
    parser.add_argument("--service", help="the consuming service (its queue name)")
    parser.add_argument("--unrouted", action="store_true", help="the exchange's unrouted queue instead")
    parser.add_argument("--store", choices=["rabbitmq", "database"], default="rabbitmq")
    parser.add_argument("--id", action="append", help="only these (message ids or timer ids)")
    parser.add_argument("--full", action="store_true", help="print each event too")
    parser.add_argument("--all", action="store_true", help="discard: every parked message")
    parser.add_argument("--out", help="export: the file to write (default: stdout)")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
