"""The year-end rush: the order saga (submitted -> quota reserves -> 待接单) on the distributed
platform, against a lean pipeline written by hand, in the same run (issue 16).

    uv run --frozen python bench/saga.py
    uv run --frozen python bench/saga.py --enterprises 20 --seconds 10 --rates 30,100 --profile /tmp/prof

One run:

1. starts every service as its own process behind the gateway (``uvicorn --factory``, as
   ``make up`` runs them; fresh databases and a RabbitMQ namespace of the run's own, all
   removed afterwards), with the production defaults for pools, polling and logging;
2. through the public API: a provider and its listed product (76元, max subsidy 138元), N
   enterprises certified, designated and granted a general voucher (5万元);
3. **(a) saturation**: wrk keeps ``--connections`` connections busy on ``POST /orders``
   through the gateway (each request its own Idempotency-Key, the enterprises in turn) for
   ``--seconds``; then waits until every order is decided (left ``pending_voucher``) and
   reports orders decided per second from the first submission to the last decision, the
   ingress req/s and p50/p99, and each process's CPU milliseconds per order (psutil);
4. the **lean pipeline** (``bench/lean_pipeline.py``: HTTP in, three PostgreSQL transactions
   in three processes, three confirmed RabbitMQ messages, raw asyncpg and aio-pika) loaded
   the same way; the **ratio** saga / lean;
5. **(b) fixed rates**: an open loop submits at each of ``--rates`` orders/s for
   ``--seconds``; ``POST /orders`` p50/p99 through the gateway and submit -> decided p50/p99
   from the orders' own timestamps (``created_at`` -> ``updated_at`` of the decision);
6. **(c) the rest of the journey** (``bench/saga_journey.py``): ``--journey`` of the decided
   orders through 接单, the contract drafted, submitted and agreed, both parties' 人脸认证 and
   signatures, the deposit's 对公转账 and its 到账核实, one phase per step at
   ``--journey-rate`` calls/s: each step's p50/p99 and CPU per call, the slowest named;
7. ``voucher-invariants`` over the platform's databases.

``--profile DIR`` samples orders, quota, catalog, identity and the gateway with py-spy during
the saturation and prints where their time goes. ``--faults [ARGS]`` runs the fault part
instead (``tests/e2e/saga_faults.py``: every process killed in turn, the broker node killed,
a broker and a database connection cut, under a steady load; its ``--help`` says more). A script that prints figures, not a test:
exit 0 when it ran (``--strict``: 1 when an aim is missed), 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import AMQP_URL, POSTGRES_URL, WRK_REPORT, print_table, py_spy, where_the_time_goes  # noqa: E402
from e2e.journey import Journey, Org, platform_for_module  # noqa: E402
from saga_journey import JourneySteps  # noqa: E402

from common.processes import free_port, uvicorn_command, wait_ready  # noqa: E402
from common.settings import database_in, to_plain_url  # noqa: E402
from common.testing.dropping import dropper  # noqa: E402

# The platform as production runs it: default polling, quiet logs; one client address and
# twenty accounts stand for thousands of users (the gateway's limits have tests). Pools of 4
# (up to 8 with the overflow): this machine's PostgreSQL allows 100 connections in all, and
# on two cores more transactions at once only wait longer for the CPU.
PLATFORM_ENV = {
    "LOG_LEVEL": "WARNING",
    "DB_POOL_SIZE": "4",
    "OUTBOX_POLL_INTERVAL": "1.0",
    "TIMER_POLL_INTERVAL": "1.0",
    "GATEWAY_RATE_LIMIT_PER_IP": "100000000",
    "GATEWAY_RATE_LIMIT_PER_USER": "100000000",
}
PROFILED = ("orders", "quota", "catalog", "identity", "gateway")

# wrk: each request a fresh Idempotency-Key, the enterprises' tokens in turn.
WRK_ORDERS = r"""
local tokens = {%(tokens)s}
local body = '%(body)s'
local n = 0
local salt = 0
function setup(thread) end
function init(args) math.randomseed(os.time() + os.clock() * 1e6); salt = math.random(1, 2^30) end
function request()
  n = n + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]
  headers["Idempotency-Key"] = string.format("bench-%%d-%%d", salt, n)
  return wrk.format("POST", "%(path)s", headers, body)
end
"""


@dataclass
class Saturation:
    name: str
    submitted: int
    decided: int
    seconds: float  # first submission -> last decision
    ingress_rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    cpu_ms: dict[str, float]  # per decided order, per process
    statements: dict[str, float] | None = None  # per decided order, per service

    @property
    def per_second(self) -> float:
        return self.decided / self.seconds if self.seconds else 0.0


def wrk_orders(
    url: str, path: str, tokens: list[str], body: dict[str, Any], connections: int, seconds: float
) -> dict[str, Any]:
    script = WRK_REPORT + WRK_ORDERS % {
        "tokens": ", ".join(f'"{t}"' for t in tokens),
        "body": json.dumps(body),
        "path": path,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("BENCHJSON "))
    return dict(json.loads(line.removeprefix("BENCHJSON ")))


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process, and of PostgreSQL's backends (all of them: the server is
    shared, so that line is only meaningful on an otherwise idle machine)."""
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = float(t.user + t.system)
        except psutil.NoSuchProcess:
            out[name] = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in ("postgres", "postmaster") and proc.info["cpu_times"] is not None:
            out[f"pg:{proc.pid}"] = float(proc.info["cpu_times"].user + proc.info["cpu_times"].system)
    return out


def statements_of(urls: dict[str, str]) -> dict[str, float]:
    """Each service's ``voucher_db_statements_total`` (its /metrics)."""
    out = {}
    for name, url in urls.items():
        if name == "gateway":
            continue
        text = httpx.get(f"{url}/metrics", timeout=10).text
        out[name] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("voucher_db_statements_total{")
        )
    return out


def per_order(before: dict[str, float], after: dict[str, float], orders: int) -> dict[str, float]:
    """Milliseconds per order of each process; PostgreSQL's backends that lived through the
    whole phase summed (the server is shared: meaningful on an otherwise idle machine)."""
    out = {k: 1000 * (after[k] - before[k]) / max(orders, 1) for k in after if not k.startswith("pg:")}
    out["postgresql (backends)"] = sum(
        1000 * (after[k] - before[k]) / max(orders, 1) for k in after if k.startswith("pg:") and k in before
    )
    return out


async def wait_decided(count_pending: Any, within: float = 300) -> None:
    deadline = time.monotonic() + within
    while await count_pending():
        if time.monotonic() > deadline:
            raise RuntimeError(f"orders still undecided after {within}s")
        await asyncio.sleep(0.2)


# --- the platform -----------------------------------------------------------------------------


class Saga:
    def __init__(self, journey: Journey, orders_db: str, pids: dict[str, int]) -> None:
        self.j = journey
        self.orders_db = orders_db
        self.pids = pids
        self.enterprises: list[Org] = []
        self.provider: Org | None = None
        self.product_id = ""

    async def prepare(self, enterprises: int) -> None:
        self.provider = provider = await self.j.provider()
        self.product_id = (await self.j.product(provider))["id"]
        made: list[Org] = []
        for start in range(0, enterprises, 5):
            batch = await asyncio.gather(
                *(
                    self.j.enterprise_with_voucher(f"广西基准制造有限公司{i:03d}")
                    for i in range(start, min(start + 5, enterprises))
                )
            )
            made += [org for org, _ in batch]
        self.enterprises = made
        # the first order of each enterprise warms every path (and checks it works)
        for org in made[:2]:
            await self.j.order(org, self.product_id)

    async def pending(self) -> int:
        conn = await asyncpg.connect(self.orders_db)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'pending_voucher'"))
        finally:
            await conn.close()

    async def window(self, since: Any) -> tuple[int, int, float, list[float]]:
        """Orders created at or after ``since``: (created, decided, first creation -> last
        decision seconds, submit -> decided milliseconds of each)."""
        conn = await asyncpg.connect(self.orders_db)
        try:
            rows = await conn.fetch(
                "SELECT created_at, updated_at, status FROM orders WHERE created_at >= $1", since
            )
        finally:
            await conn.close()
        decided = [r for r in rows if r["status"] != "pending_voucher"]
        if not decided:
            return len(rows), 0, 0.0, []
        span = (max(r["updated_at"] for r in decided) - min(r["created_at"] for r in rows)).total_seconds()
        return (
            len(rows),
            len(decided),
            span,
            [(r["updated_at"] - r["created_at"]).total_seconds() * 1000 for r in decided],
        )

    async def now(self) -> Any:
        conn = await asyncpg.connect(self.orders_db)
        try:
            return await conn.fetchval("SELECT clock_timestamp()")
        finally:
            await conn.close()

    async def saturate(self, connections: int, seconds: float) -> Saturation:
        since = await self.now()
        before = cpu_of(self.pids)
        sent = await asyncio.to_thread(statements_of, self.j.platform.urls)
        load = await asyncio.to_thread(
            wrk_orders,
            f"{self.j.platform.gateway_url}",
            "/api/v1/orders",
            [o.session.access_token for o in self.enterprises],
            {"product_id": self.product_id, "use_voucher": True},
            connections,
            seconds,
        )
        await wait_decided(self.pending)
        after = cpu_of(self.pids)
        created, decided, span, _ = await self.window(since)
        await asyncio.sleep(1.5)  # the events after the decision (catalog's count, ...)
        sent_after = await asyncio.to_thread(statements_of, self.j.platform.urls)
        saturation = Saturation(
            "saga",
            created,
            decided,
            span,
            load["requests"] / load["seconds"],
            load["p50_ms"],
            load["p99_ms"],
            load["non_2xx"] + load["errors"],
            per_order(before, after, decided),
        )
        saturation.statements = {k: (sent_after[k] - sent[k]) / max(decided, 1) for k in sent}
        return saturation

    async def fixed_rate(self, rate: float, seconds: float) -> dict[str, Any]:
        since = await self.now()
        before = cpu_of(self.pids)
        latencies, failures = await open_loop(
            self.j.platform.gateway_url + "/api/v1/orders",
            rate,
            seconds,
            lambda i: (
                {"product_id": self.product_id, "use_voucher": True},
                {
                    "Authorization": f"Bearer {self.enterprises[i % len(self.enterprises)].session.access_token}",
                    "Idempotency-Key": str(uuid.uuid4()),
                },
            ),
        )
        await wait_decided(self.pending)
        after = cpu_of(self.pids)
        created, decided, _, to_decided = await self.window(since)
        return {
            "rate": rate,
            "submitted": created,
            "decided": decided,
            "failed": failures,
            "post_p50_ms": pct(latencies, 50),
            "post_p99_ms": pct(latencies, 99),
            "decided_p50_ms": pct(to_decided, 50),
            "decided_p99_ms": pct(to_decided, 99),
            "cpu_ms": per_order(before, after, decided),
        }


async def open_loop(
    url: str, rate: float, seconds: float, make: Any, ok: tuple[int, ...] = (200, 201)
) -> tuple[list[float], int]:
    """Requests sent at fixed instants (an open loop: a slow answer does not delay the next)."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            nonlocal failures
            body, headers = make(i)
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json=body, headers=headers)
            except httpx.HTTPError:
                failures += 1
                return
            if r.status_code in ok:
                latencies.append(1000 * (time.perf_counter() - t0))
            else:
                failures += 1

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies, failures


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- the lean pipeline ------------------------------------------------------------------------


@asynccontextmanager
async def lean_pipeline(
    workdir: Path, enterprises: list[str]
) -> AsyncIterator[tuple[str, str, dict[str, int]]]:
    """The three processes of ``bench/lean_pipeline.py`` on a database and exchange of their own."""
    tag = uuid.uuid4().hex[:8]
    db = f"bench_lean_{tag}"
    await _pg(f'CREATE DATABASE "{db}"')
    url = database_in(POSTGRES_URL, db)
    plain = to_plain_url(url)
    from lean_pipeline import prepare

    await prepare(plain, enterprises, 10**12)
    env = {
        **os.environ,
        "LEAN_DATABASE_URL": plain,
        "LEAN_AMQP_URL": AMQP_URL,
        "LEAN_EXCHANGE": f"bench.lean.{tag}",
        "PYTHONPATH": str(HERE),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        port = _spawn_lean(workdir, env, procs)
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", procs["ingress"], 60)
        await asyncio.sleep(1.0)  # the workers' queues bound
        yield f"http://127.0.0.1:{port}", plain, {f"lean-{k}": p.pid for k, p in procs.items()}
    except Exception:
        _print_lean_logs(workdir)
        raise
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        await _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _spawn_lean(workdir: Path, env: dict[str, str], procs: dict[str, subprocess.Popen[bytes]]) -> int:
    """The two workers and the ingress (under uvicorn); the ingress's port."""
    for role in ("reserver", "decider"):
        log = (workdir / f"lean-{role}.log").open("wb")
        procs[role] = subprocess.Popen(
            [sys.executable, str(HERE / "lean_pipeline.py"), role],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    port = free_port()
    log = (workdir / "lean-ingress.log").open("wb")
    procs["ingress"] = subprocess.Popen(
        uvicorn_command("lean_pipeline:create_app", port), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return port


def _print_lean_logs(workdir: Path) -> None:
    for log_file in sorted(workdir.glob("lean-*.log")):
        print(f"--- {log_file.name}\n{log_file.read_text(errors='replace')[-2000:]}", file=sys.stderr)


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(database_in(POSTGRES_URL, "postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def saturate_lean(
    url: str, db: str, pids: dict[str, int], enterprises: list[str], connections: int, seconds: float
) -> Saturation:
    before = cpu_of(pids)
    conn = await asyncpg.connect(db)
    try:
        since = await conn.fetchval("SELECT clock_timestamp()")
        load = await asyncio.to_thread(
            wrk_orders,
            url,
            "/orders",
            ["lean"],
            {"enterprise_id": enterprises[0], "amount_fen": 3800},
            connections,
            seconds,
        )
        deadline = time.monotonic() + 300
        while await conn.fetchval("SELECT count(*) FROM lean_orders WHERE status = 'pending'"):
            if time.monotonic() > deadline:
                raise RuntimeError("lean orders undecided after 300 s")
            await asyncio.sleep(0.2)
        row = await conn.fetchrow(
            "SELECT count(*) AS n, min(created_at) AS first, max(decided_at) AS last FROM lean_orders WHERE created_at >= $1",
            since,
        )
    finally:
        await conn.close()
    after = cpu_of(pids)
    n = int(row["n"])
    return Saturation(
        "lean",
        n,
        n,
        (row["last"] - row["first"]).total_seconds(),
        load["requests"] / load["seconds"],
        load["p50_ms"],
        load["p99_ms"],
        load["non_2xx"] + load["errors"],
        per_order(before, after, n),
    )


# --- the run ----------------------------------------------------------------------------------


def cpu_table(results: list[Saturation]) -> None:
    names = sorted({k for r in results for k in r.cpu_ms})
    rows = [("CPU ms / decided order", *(r.name for r in results))]
    for name in names:
        rows.append((name, *(f"{r.cpu_ms[name]:.2f}" if name in r.cpu_ms else "" for r in results)))
    rows.append(("all processes", *(f"{sum(r.cpu_ms.values()):.2f}" for r in results)))
    print_table(rows)
    for r in results:
        if r.statements:
            shown = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r.statements.items()) if v >= 0.05)
            print(f"SQL statements per order ({r.name}): {sum(r.statements.values()):.1f} = {shown}")


async def run(args: argparse.Namespace) -> int:
    missed: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-saga-"))
    try:
        async with platform_for_module(POSTGRES_URL, AMQP_URL, workdir, extra_env=PLATFORM_ENV) as platform:
            pids = {name: p.pid for name, p in platform.processes.procs.items()}
            async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60) as client:
                journey = await Journey.start(platform, client)
                saga = Saga(journey, to_plain_url(journey.database_urls()["orders"]), pids)
                t0 = time.perf_counter()
                await saga.prepare(args.enterprises)
                print(
                    f"prepared {args.enterprises} enterprises with vouchers and a product in {time.perf_counter() - t0:.0f} s"
                )

                with ExitStack() as spies:
                    if args.profile:
                        folder = Path(args.profile)
                        for name in PROFILED:
                            spies.enter_context(py_spy(pids[name], folder / f"{name}.txt"))
                    saturated = await saga.saturate(args.connections, args.seconds)
                if args.profile:
                    for name in PROFILED:
                        print(f"\n== {name} (py-spy, saturation)")
                        print("\n".join(where_the_time_goes(Path(args.profile) / f"{name}.txt", top=25)))

                lean_enterprises = [str(uuid.uuid4())]  # one voucher with a balance no run uses up
                async with lean_pipeline(workdir, lean_enterprises) as (lean_url, lean_db, lean_pids):
                    lean = await saturate_lean(
                        lean_url, lean_db, lean_pids, lean_enterprises, args.connections, args.seconds
                    )

                print(f"\n(a) saturation, {args.connections} connections for {args.seconds:.0f} s")
                rows: list[tuple[str, ...]] = [
                    ("", "orders", "decided/s", "ingress req/s", "p50 ms", "p99 ms", "non-2xx")
                ]
                for r in (saturated, lean):
                    rows.append(
                        (
                            r.name,
                            str(r.decided),
                            f"{r.per_second:.1f}",
                            f"{r.ingress_rps:.1f}",
                            f"{r.p50_ms:.1f}",
                            f"{r.p99_ms:.1f}",
                            str(r.non_2xx),
                        )
                    )
                print_table(rows)
                ratio = saturated.per_second / lean.per_second if lean.per_second else 0.0
                print(f"ratio saga / lean: {ratio:.2f} (aim >= 0.50)")
                if ratio < 0.5:
                    missed.append(f"ratio {ratio:.2f}")
                cpu_table([saturated, lean])

                print(f"\n(b) fixed rates, {args.seconds:.0f} s each")
                rows = [
                    (
                        "orders/s",
                        "submitted",
                        "decided",
                        "failed",
                        "POST p50",
                        "POST p99",
                        "decided p50",
                        "decided p99",
                        "CPU ms/order",
                    )
                ]
                for rate in args.rates:
                    fixed = await saga.fixed_rate(rate, args.seconds)
                    rows.append(
                        (
                            f"{rate:g}",
                            str(fixed["submitted"]),
                            str(fixed["decided"]),
                            str(fixed["failed"]),
                            f"{fixed['post_p50_ms']:.1f}",
                            f"{fixed['post_p99_ms']:.1f}",
                            f"{fixed['decided_p50_ms']:.1f}",
                            f"{fixed['decided_p99_ms']:.1f}",
                            f"{sum(fixed['cpu_ms'].values()):.1f}",
                        )
                    )
                    if rate == 100:
                        for aim, value, limit in (
                            ("POST /orders p99", fixed["post_p99_ms"], 50),
                            ("submit -> decided p50", fixed["decided_p50_ms"], 15),
                            ("submit -> decided p99", fixed["decided_p99_ms"], 100),
                        ):
                            if not value <= limit:
                                missed.append(f"{aim} {value:.1f} ms > {limit} ms")
                print_table(rows)

                if args.journey:
                    await journey_phase(saga, args.journey, args.journey_rate)

                invariants = await asyncio.to_thread(journey.run_invariants)
                print(f"\nvoucher-invariants: exit {invariants.returncode}")
                if invariants.returncode:
                    print(invariants.stdout[-3000:], invariants.stderr[-2000:])
                    return 2
    finally:
        dropper.flush()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\naims missed: " + ("; ".join(missed) if missed else "none"))
    return 1 if missed and args.strict else 0


async def journey_phase(saga: Saga, n: int, rate: float) -> None:
    """(c): the rest of the journey at a steady rate, step by step (bench/saga_journey.py)."""
    assert saga.provider is not None
    steps = JourneySteps(
        saga.j,
        saga.provider,
        saga.enterprises,
        {k: to_plain_url(v) for k, v in saga.j.database_urls().items()},
        lambda: cpu_of(saga.pids),
        per_order,
    )
    results = await steps.run(n, rate)
    print(f"\n(c) the rest of the journey, {n} orders at {rate:g} calls/s, one phase per step")
    rows = [("step", "p50 ms", "p99 ms", "CPU ms/call", "most CPU in (a service)")]
    for r in results:
        top = max(
            ((k, v) for k, v in r.cpu_ms.items() if not k.startswith("postgresql")), key=lambda kv: kv[1]
        )
        rows.append(
            (
                r.name,
                f"{pct(r.latencies_ms, 50):.1f}",
                f"{pct(r.latencies_ms, 99):.1f}",
                f"{r.cpu_total:.1f}",
                f"{top[0]} {top[1]:.1f}",
            )
        )
    print_table(rows)
    by_cpu = max(results, key=lambda r: r.cpu_total)
    by_time = max(results, key=lambda r: pct(r.latencies_ms, 50))
    print(f"slowest step: by CPU {by_cpu.name} ({by_cpu.cpu_total:.1f} ms/call); by p50 {by_time.name}")


def main() -> int:
    if sys.argv[1:2] == ["--faults"]:
        # Nothing lost under load: tests/e2e/saga_faults.py (make test runs it small),
        # here at the benchmark's load, e.g. --faults --rate 100 --duration 60 --pool orders=10,quota=10
        from e2e.saga_faults import main as faults

        return faults(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--enterprises", type=int, default=20)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[30.0, 100.0])
    p.add_argument(
        "--journey",
        type=int,
        default=20,
        metavar="N",
        help="(c): N orders through the rest of the journey (0: none)",
    )
    p.add_argument("--journey-rate", type=float, default=2.0, help="(c): calls per second of each step")
    p.add_argument("--profile", metavar="DIR", help="py-spy the saga's processes during the saturation")
    p.add_argument("--strict", action="store_true", help="exit 1 when an aim is missed")
    args = p.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(run(args))
    except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench/saga.py failed: {exc!r}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
