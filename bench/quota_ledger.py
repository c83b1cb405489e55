"""Voucher reservation throughput over a ledger of 100,000 movements (distributed mode).

    uv run --frozen python bench/quota_ledger.py
    uv run --frozen python bench/quota_ledger.py --movements 100000 --orders 2000 --json /tmp/quota.json

One run:

1. creates a fresh database (``bench_<id>_quota``) and starts quota as its own uvicorn
   process, as ``make up`` does (RabbitMQ transport on an exchange and queue prefix of the
   run's own; migrations on start);
2. fills one "hot" voucher's journal with N movements (reserve / release pairs of earlier
   orders, each with its reservation row, so the balances are those the journal adds up to)
   and issues 100 more vouchers to as many enterprises; ``ANALYZE``;
3. **saga path**: publishes M ``orders.order_submitted`` events to the broker, all for the
   hot voucher, and times until quota has decided every one (its consumer: inbox, ordering
   guard, reservation lock, voucher lock, conditional UPDATE, journal row, outbox event);
   then the same M spread over the 100 vouchers;
4. **ledger path**: the same reservation operation (``quota.service.vouchers.reserve_for_order``)
   called from this process with 16 concurrent sessions, on the hot voucher and then spread,
   with per-reservation latency p50 / p99;
5. checks that the hot voucher's journal still adds up to its balances, prints the figures,
   and removes everything it made (process, database, queues, exchange), also on failure.

A script that prints figures, not a test: exit 0 when it ran, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import AMQP_URL, BenchRun, print_table

from common.bus.rabbitmq import RabbitTransport
from common.db import Database, connect, migrate
from common.events import Envelope, OrderSubmitted
from common.numbers import shanghai_now
from common.settings import to_plain_url
from quota.ledger import replay
from quota.main import MIGRATIONS
from quota.service.vouchers import reserve_for_order

HOT = "00000000-0000-4000-8000-0000000b0001"
HOT_OWNER = "00000000-0000-4000-8000-0000000e0001"
BIG = 10**12  # a balance no benchmark run uses up


def order(enterprise_id: str, provider_id: str) -> OrderSubmitted:
    return OrderSubmitted(
        order_id=str(uuid.uuid4()),
        order_no="ORD" + uuid.uuid4().hex[:15],
        enterprise_id=enterprise_id,
        enterprise_name="基准测试企业",
        provider_id=provider_id,
        provider_name="基准测试服务机构",
        product_id="bench-product",
        product_name="企业诊断服务",
        category="企业诊断",
        voucher_type="general",
        use_voucher=True,
        price_fen=7600,
        max_subsidy_fen=10_000,
    )


async def fill(url: str, movements: int, spread: int) -> list[str]:
    """The hot voucher with ``movements`` journal rows, and ``spread`` more vouchers; their owners."""
    year = shanghai_now().year
    conn = await connect(to_plain_url(url))
    try:
        pairs = movements // 2
        await conn.execute(
            """
            INSERT INTO vouchers (id, voucher_no, enterprise_id, campaign_year, voucher_type, tier, ratio_bp,
                                  valid_from, valid_to, total_fen, remaining_fen)
            SELECT CASE WHEN g = 0 THEN $1::text ELSE gen_random_uuid()::text END,
                   'SVC' || to_char(now(), 'YYMMDDHH24MISS') || lpad(g::text, 4, '0'),
                   CASE WHEN g = 0 THEN $2::text ELSE gen_random_uuid()::text END,
                   $3::int, 'general', '一般规模以上制造业企业', 5000, $4::date, $5::date, $6::bigint, $6::bigint
            FROM generate_series(0, $7::int) g
            """,
            HOT,
            HOT_OWNER,
            year,
            date(year, 1, 1),
            date(year, 12, 31),
            BIG,
            spread,
        )
        await conn.execute(
            """
            INSERT INTO voucher_reservations (order_id, voucher_id, enterprise_id, provider_id, voucher_type,
                                              cap_year, state, amount_fen, ratio_bp)
            SELECT 'hist-' || g, $1::text, $2::text, 'hist-provider', 'general', $3::int, 'released', 3800, 5000
            FROM generate_series(1, $4::int) g
            """,
            HOT,
            HOT_OWNER,
            year,
            pairs,
        )
        # reserve / release pairs: the balances after each row are what the journal adds up to.
        await conn.execute(
            """
            INSERT INTO voucher_movements (voucher_id, kind, order_id, amount_fen, total_fen, remaining_fen,
                                           reserved_fen, used_fen, settled_fen, expired_fen)
            SELECT $1::text, k.kind, 'hist-' || g, 3800, $2::bigint,
                   CASE WHEN k.kind = 'reserve' THEN $2::bigint - 3800 ELSE $2::bigint END,
                   CASE WHEN k.kind = 'reserve' THEN 3800 ELSE 0 END, 0, 0, 0
            FROM generate_series(1, $3::int) g CROSS JOIN (VALUES (1, 'reserve'), (2, 'release')) AS k(n, kind)
            ORDER BY g, k.n
            """,
            HOT,
            BIG,
            pairs,
        )
        await conn.execute(
            """
            INSERT INTO voucher_movements (voucher_id, kind, amount_fen, total_fen, remaining_fen, reserved_fen,
                                           used_fen, settled_fen, expired_fen)
            SELECT id, 'issue', total_fen, total_fen, total_fen, 0, 0, 0, 0 FROM vouchers
            """
        )
        await conn.execute("ANALYZE")
        owners = [
            r["enterprise_id"]
            for r in await conn.fetch("SELECT enterprise_id FROM vouchers WHERE id <> $1", HOT)
        ]
        count = await conn.fetchval("SELECT count(*) FROM voucher_movements WHERE voucher_id = $1", HOT)
        print(f"  ledger: hot voucher with {count:,} movements, {len(owners)} other vouchers")
        return owners
    finally:
        await conn.close()


async def decided(url: str) -> int:
    conn = await connect(to_plain_url(url))
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM voucher_reservations WHERE order_id NOT LIKE 'hist-%'")
        )
    finally:
        await conn.close()


async def saga_path(run: BenchRun, url: str, events: list[OrderSubmitted]) -> dict[str, Any]:
    transport = RabbitTransport(AMQP_URL, exchange=run.exchange, queue_prefix=run.prefix, publish_timeout=10)
    await transport.start()
    before = await decided(url)
    started = time.perf_counter()
    try:
        for batch in range(0, len(events), 200):
            await asyncio.gather(
                *(
                    transport.publish(Envelope.wrap(e, aggregate_id=e.order_id, sequence=1).to_json())
                    for e in events[batch : batch + 200]
                )
            )
        published = time.perf_counter() - started
        while await decided(url) - before < len(events):
            if time.perf_counter() - started > 600:
                raise RuntimeError("quota did not decide every order within 10 minutes")
            await asyncio.sleep(0.05)
    finally:
        await transport.stop()
    elapsed = time.perf_counter() - started
    return {"orders": len(events), "seconds": elapsed, "per_s": len(events) / elapsed, "publish_s": published}


async def ledger_path(url: str, events: list[OrderSubmitted], concurrency: int) -> dict[str, Any]:
    db = Database(url, pool_size=concurrency)
    latencies: list[float] = []
    queue: asyncio.Queue[OrderSubmitted] = asyncio.Queue()
    for e in events:
        queue.put_nowait(e)
    at = datetime.now(UTC)

    async def worker() -> None:
        while not queue.empty():
            e = queue.get_nowait()
            t0 = time.perf_counter()
            async with db.transaction() as s:
                await reserve_for_order(s, e, at, default_cap_fen=BIG)
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await db.dispose()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "orders": len(events),
        "seconds": elapsed,
        "per_s": len(events) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def check(url: str) -> bool:
    conn = await connect(to_plain_url(url))
    try:
        rows = await conn.fetch(
            "SELECT kind, amount_fen FROM voucher_movements WHERE voucher_id = $1 ORDER BY id", HOT
        )
        v = await conn.fetchrow("SELECT * FROM vouchers WHERE id = $1", HOT)
    finally:
        await conn.close()
    b = replay((r["kind"], r["amount_fen"]) for r in rows)
    stored = (
        v["total_fen"],
        v["remaining_fen"],
        v["reserved_fen"],
        v["used_fen"],
        v["settled_fen"],
        v["expired_fen"],
    )
    ok = (
        b.holds()
        and (b.total_fen, b.remaining_fen, b.reserved_fen, b.used_fen, b.settled_fen, b.expired_fen) == stored
    )
    print(f"  hot voucher: {len(rows):,} movements; the journal adds up to the balances: {ok}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=2000, help="reservations per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--ledger-only",
        action="store_true",
        help="no quota process and no broker: migrate the database here, measure the ledger path only",
    )
    args = parser.parse_args()
    n = args.orders
    results: dict[str, Any] = {"movements": args.movements, "orders": n}
    try:
        with BenchRun("quota") as run:
            url = run.database("quota")
            if args.ledger_only:
                asyncio.run(migrate(MIGRATIONS, url))
                owners = asyncio.run(fill(url, args.movements, 100))
            else:
                run.start("quota", run.base_env(QUOTA_DATABASE_URL=url, OUTBOX_POLL_INTERVAL="0.2"))
                print(f"quota started ({run.started['quota'].url}), filling the ledger ...")
                owners = asyncio.run(fill(url, args.movements, 100))
                cpu0 = run.cpu_seconds()["quota"]
                hot = [order(HOT_OWNER, "p-hot") for _ in range(n)]
                results["saga_hot"] = asyncio.run(saga_path(run, url, hot))
                spread = [order(owners[i % len(owners)], f"p-{i % 50}") for i in range(n)]
                results["saga_spread"] = asyncio.run(saga_path(run, url, spread))
                results["quota_cpu_ms_per_order"] = (run.cpu_seconds()["quota"] - cpu0) * 1000 / (2 * n)
            hot = [order(HOT_OWNER, "p-hot2") for _ in range(n)]
            results["ledger_hot"] = asyncio.run(ledger_path(url, hot, args.concurrency))
            spread = [order(owners[i % len(owners)], f"q-{i % 50}") for i in range(n)]
            results["ledger_spread"] = asyncio.run(ledger_path(url, spread, args.concurrency))
            results["journal_adds_up"] = asyncio.run(check(url))
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, not raised
        if "journal_adds_up" not in results:
            print(f"run failed: {exc!r}", file=sys.stderr)
            return 2
        # Measured; only the clean-up failed (with --ledger-only the broker may be away).
        print(f"clean-up incomplete: {exc!r}", file=sys.stderr)
    rows: list[tuple[str, ...]] = [("measurement", "orders", "seconds", "reservations/s", "p50 ms", "p99 ms")]
    for key, label in (
        ("saga_hot", "saga: events -> quota process, one voucher"),
        ("saga_spread", "saga: events -> quota process, 100 vouchers"),
        ("ledger_hot", f"ledger: {args.concurrency} sessions, one voucher"),
        ("ledger_spread", f"ledger: {args.concurrency} sessions, 100 vouchers"),
    ):
        if key not in results:
            continue
        r = results[key]
        p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else "-"
        p99 = f"{r['p99_ms']:.1f}" if "p99_ms" in r else "-"
        rows.append((label, str(r["orders"]), f"{r['seconds']:.2f}", f"{r['per_s']:.0f}", p50, p99))
    print()
    print_table(rows)
    if "quota_cpu_ms_per_order" in results:
        print(f"\nquota CPU per order on the saga path: {results['quota_cpu_ms_per_order']:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
