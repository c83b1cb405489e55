"""Bus throughput: the outbox relay's publishes per second and end-to-end events per second,
on RabbitMQ and on the in-process transport, with 1 and 3 consumers.

    uv run python bench/bus.py                    # defaults: 2000 relay rows, 1000 events
    uv run python bench/bus.py --relay-rows 5000 --events 2000 --json /tmp/bus.json

Each figure is measured on fresh databases (created and dropped by the run) and, for
RabbitMQ, on a private exchange and queue prefix of the run (``RabbitNamespace``), deleted at
the end. PostgreSQL and RabbitMQ come from ``POSTGRES_URL`` / ``AMQP_URL`` (default: the local
servers).

- relay publishes/s: N rows already in the outbox, no consumer running: the time
  ``OutboxRelay.drain()`` takes to publish them all (RabbitMQ: with publisher confirms; the
  messages land in the exchange's unrouted queue). On RabbitMQ twice: one publish at a time
  (``in_flight=1``: each confirmation awaited before the next publish, as the relay did
  before) and with the batch's confirmations in flight together (the default). The rows
  belong to 100 aggregates; once more with all of them of ONE aggregate (a chain the relay
  must publish in sequence order, one row after the other).
- end-to-end events/s: N events already in the outbox, then the relay and the consumers
  start; the time until every consumer's inbox holds all N (each consumer on its own
  database, its handler writing one row per event).

A script that prints figures, not a test: exit 0 when it ran, 2 when it failed. To measure
another build of the bus with the same script (the one before a change, say), put its
``libs/common`` first on ``PYTHONPATH``; ``--amqp`` points it at another broker (a private
node: ``common.testing.rabbit.PrivateRabbitNode``).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.bus.consumer import Consumer
from common.bus.inprocess import InProcessTransport
from common.bus.outbox import OutboxRelay, emit
from common.db import Database, connect
from common.events import Envelope, OrganizationCertified
from common.logging import configure_logging
from common.settings import database_in
from common.tables import create_common_schema
from common.testing.rabbit import RabbitNamespace

POSTGRES = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EVENT = OrganizationCertified.event_type
TAG = uuid.uuid4().hex[:8]
_databases: list[str] = []


async def fresh_database(hint: str) -> Database:
    name = f"bench_{TAG}_{hint}_{len(_databases)}"
    conn = await connect(database_in(POSTGRES, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    _databases.append(name)
    db = Database(database_in(POSTGRES, name), pool_size=8)
    async with db.engine.begin() as c:
        await c.run_sync(create_common_schema)
        await c.execute(text("CREATE TABLE applied (event_id text PRIMARY KEY, org_id text NOT NULL)"))
    return db


async def drop_databases() -> None:
    conn = await connect(database_in(POSTGRES, "postgres"))
    try:
        for name in _databases:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fill_outbox(db: Database, n: int, aggregates: int = 100) -> None:
    chunk = 500
    for start in range(0, n, chunk):
        async with db.transaction() as s:
            for i in range(start, min(n, start + chunk)):
                org = f"org-{i % aggregates}"
                await emit(
                    s,
                    OrganizationCertified(
                        org_id=org, name=f"广西{org}制造有限公司", uscc="91450100MA5K", kind="enterprise"
                    ),
                    aggregate_id=org,
                )


def make_consumer(name: str, db: Database) -> Consumer:
    consumer = Consumer(name, db)

    @consumer.on(EVENT)
    async def certified(session: AsyncSession, env: Envelope[Any]) -> None:
        await session.execute(
            text("INSERT INTO applied (event_id, org_id) VALUES (:e, :o)"),
            {"e": env.event_id, "o": env.payload.org_id},
        )

    return consumer


async def inbox_count(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(text("SELECT count(*) FROM inbox"))).scalar_one())


async def relay_rate(kind: str, n: int, in_flight: int = 100, aggregates: int = 100) -> float:
    db = await fresh_database("relay")
    ns = RabbitNamespace(AMQP, f"bench.{TAG}.{kind}.relay", f"bench.{TAG}.{kind}.relay.")
    transport: Any = InProcessTransport() if kind == "inprocess" else ns.transport(publish_timeout=10)
    try:
        await transport.start()
        await fill_outbox(db, n, aggregates)
        kwargs = {"in_flight": in_flight} if "in_flight" in inspect.signature(OutboxRelay).parameters else {}
        if kwargs or in_flight == 1:
            relay = OutboxRelay(db, transport, listen=False, **kwargs)
        else:  # a relay without the knob (before it existed) publishes one at a time only
            return float("nan")
        t0 = time.perf_counter()
        published = await relay.drain(max_rounds=10**6)
        elapsed = time.perf_counter() - t0
        assert published == n, f"published {published} of {n}"
        return n / elapsed
    finally:
        await transport.stop()
        await db.dispose()
        if kind == "rabbitmq":
            await ns.cleanup()


async def end_to_end_rate(kind: str, n: int, consumers: int) -> float:
    publisher = await fresh_database("pub")
    dbs = [await fresh_database(f"c{i}") for i in range(consumers)]
    ns = RabbitNamespace(AMQP, f"bench.{TAG}.{kind}.e2e{consumers}", f"bench.{TAG}.{kind}.e2e{consumers}.")
    transport: Any = InProcessTransport() if kind == "inprocess" else ns.transport(publish_timeout=10)
    relay = OutboxRelay(publisher, transport, listen=False, poll_interval=0.05)
    try:
        await transport.start()
        for i, db in enumerate(dbs):
            await transport.subscribe(make_consumer(f"bench{i}", db))
        await fill_outbox(publisher, n)
        t0 = time.perf_counter()
        relay.start()
        while True:
            counts = await asyncio.gather(*(inbox_count(db) for db in dbs))
            if all(c >= n for c in counts):
                break
            if time.perf_counter() - t0 > 600:
                raise TimeoutError(f"only {counts} of {n} applied")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        return n / elapsed
    finally:
        await relay.stop()
        await transport.stop()
        for db in (publisher, *dbs):
            await db.dispose()
        if kind == "rabbitmq":
            await ns.cleanup()


async def run(args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    try:
        for kind in ("rabbitmq", "inprocess"):
            if kind == "rabbitmq":
                key = f"{kind}.relay_publishes_per_s.one_at_a_time"
                results[key] = await relay_rate(kind, args.relay_rows, in_flight=1)
                print(f"{kind:9} relay, one publish at a time: {results[key]:8.0f} publishes/s", flush=True)
            key = f"{kind}.relay_publishes_per_s"
            results[key] = await relay_rate(kind, args.relay_rows)
            print(f"{kind:9} relay, confirms in flight: {results[key]:8.0f} publishes/s", flush=True)
            key = f"{kind}.relay_publishes_per_s.one_aggregate"
            results[key] = await relay_rate(kind, args.relay_rows, aggregates=1)
            print(f"{kind:9} relay, one aggregate:      {results[key]:8.0f} publishes/s", flush=True)
            for consumers in (1, 3):
                key = f"{kind}.e2e_events_per_s.{consumers}_consumers"
                results[key] = await end_to_end_rate(kind, args.events, consumers)
                print(
                    f"{kind:9} end to end, {consumers} consumer(s): {results[key]:8.0f} events/s", flush=True
                )
    finally:
        await drop_databases()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relay-rows", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--amqp", help="the broker (default: AMQP_URL or the local one)")
    args = parser.parse_args()
    global AMQP
    if args.amqp:
        AMQP = args.amqp
    configure_logging("WARNING", json=False, stream=sys.stderr)
    print(f"bus benchmark on {os.cpu_count()} core(s); PostgreSQL {POSTGRES}, RabbitMQ {AMQP.split('@')[-1]}")
    try:
        results = asyncio.run(run(args))
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and exits 2
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
