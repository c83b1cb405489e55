"""What each process of the platform needs in memory and CPU under a mixed load, and the
Kubernetes requests/limits that follows (issue 17, section 9: limits sized from a load test).

    uv run --frozen python bench/footprint.py
    uv run --frozen python bench/footprint.py --idle 20 --seconds 120 --rate 20 --json /tmp/fp.json

One run:

1. starts the platform distributed, every service and the gateway its own process
   (``tests/e2e/journey.platform_for_module``, as ``bench/saga.py`` does: fresh databases and a
   RabbitMQ namespace of the run's own, removed afterwards), with the production defaults
   for pools, polling, logging and the password hash's cost, and the portal (``web``) as one
   more process on that gateway;
2. **idle**: ``--idle`` seconds of nothing (the pollers, the relays): the idle RSS;
3. ``bench/saga.py``'s preparation: a provider and its product, ``--enterprises``
   enterprises certified, designated and granted a voucher;
4. **mixed load** for ``--seconds``: orders submitted through the gateway at ``--rate``/s
   (``Saga.fixed_rate``, the order saga to its decision) while a burst of ``--logins``
   password sign-ins (argon2id at the production cost) hits identity every 15 s; then
   ``--saturate`` seconds of wrk on ``POST /orders``; the portal's public pages (home,
   products, notices: server-rendered from the gateway's API) are read at ``--pages``/s
   throughout; then ``--journey`` orders through the
   rest of the journey (``bench/saga_journey.py``: 接单, the contract, 人脸认证, signatures,
   the deposit);
5. all along, every 0.5 s, each process's RSS and CPU (psutil, the process and its children).

Printed per process: idle RSS (median of the idle phase), steady RSS (median under load),
peak RSS, p95 and peak CPU cores (per 0.5 s sample, under load), and the recommendation:
CPU request = p95 cores (rounded up to 50m, at least 100m), memory request = steady RSS and
memory limit = peak RSS x 1.5 (both rounded up to 64 Mi; the limit at least 256 Mi), CPU
limit = 2 x the request (at least 500m, at most 2 cores). A script that prints figures, not a test: exit 0 when it ran,
2 when the run failed. The machine's load average is printed too: on a shared machine the
CPU figures are what the platform got, not what it would have taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import AMQP_URL, POSTGRES_URL, print_table  # noqa: E402
from e2e.journey import STAFF_PASSWORD, Journey, platform_for_module  # noqa: E402
from saga import PLATFORM_ENV, Saga, journey_phase  # noqa: E402

from common import registry  # noqa: E402
from common.processes import free_port  # noqa: E402
from common.settings import to_plain_url  # noqa: E402
from common.testing.dropping import dropper  # noqa: E402

MI = 2**20
# The production cost of the password hash (identity.config's defaults; the test platform
# lowers it), so that the sign-in bursts cost what they cost in production.
FOOTPRINT_ENV = {
    **PLATFORM_ENV,
    "IDENTITY_ARGON2_TIME_COST": "2",
    "IDENTITY_ARGON2_MEMORY_KIB": "19456",
}
INTERVAL = 0.5
# Floors (bench/README.md, "Footprint"): CPU measured on a shared machine is a lower bound,
# and the memory of what the load does not drive (quota's 50 MiB imports, exports, the largest
# contract PDFs) was not measured: no limit goes under the 256 Mi it was before.
CPU_REQUEST_FLOOR_M = 100
MEMORY_LIMIT_FLOOR_MI = 256


@dataclass
class Sample:
    phase: str
    rss: float  # bytes
    cores: float  # CPU seconds per second over the last interval


@dataclass
class Sampler:
    """Every ``INTERVAL`` s, each process's RSS and CPU (user + system, its children included)."""

    pids: dict[str, int]
    phase: str = "start"
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @staticmethod
    def _measure(proc: psutil.Process) -> tuple[float, float]:
        rss, cpu = 0.0, 0.0
        for p in (proc, *proc.children(recursive=True)):
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    rss += p.memory_info().rss
                    cpu += t.user + t.system
            except psutil.NoSuchProcess:
                continue
        return rss, cpu

    def _run(self) -> None:
        procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        last = {name: (time.monotonic(), self._measure(p)[1]) for name, p in procs.items()}
        while not self._stop.wait(INTERVAL):
            for name, proc in procs.items():
                try:
                    rss, cpu = self._measure(proc)
                except psutil.NoSuchProcess:
                    continue
                now = time.monotonic()
                t0, cpu0 = last[name]
                last[name] = (now, cpu)
                self.samples.setdefault(name, []).append(Sample(self.phase, rss, (cpu - cpu0) / (now - t0)))


def up(value: float, step: float) -> float:
    return math.ceil(value / step) * step


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass
class Footprint:
    name: str
    idle_mib: float
    steady_mib: float
    peak_mib: float
    p95_cores: float
    peak_cores: float

    @property
    def cpu_request_m(self) -> int:
        return max(CPU_REQUEST_FLOOR_M, int(up(self.p95_cores * 1000, 50)))

    @property
    def cpu_limit_m(self) -> int:
        return min(2000, max(500, 2 * self.cpu_request_m))

    @property
    def memory_request_mi(self) -> int:
        return int(up(self.steady_mib, 64))

    @property
    def memory_limit_mi(self) -> int:
        return max(MEMORY_LIMIT_FLOOR_MI, int(up(self.peak_mib * 1.5, 64)))


def footprints(samples: dict[str, list[Sample]]) -> list[Footprint]:
    out = []
    for name, rows in sorted(samples.items()):
        idle = [s.rss for s in rows if s.phase == "idle"] or [rows[0].rss]
        loaded = [s for s in rows if s.phase in ("load", "saturation", "journey")] or rows
        out.append(
            Footprint(
                name,
                statistics.median(idle) / MI,
                statistics.median(s.rss for s in loaded) / MI,
                max(s.rss for s in rows) / MI,
                pct([s.cores for s in loaded], 95),
                max(s.cores for s in loaded),
            )
        )
    return out


async def login_bursts(journey: Journey, until: float, size: int) -> tuple[int, int]:
    """``size`` password sign-ins at once every 15 s (staff accounts of their own, so no
    account's failure counter or lock comes into it); (signed in, failed)."""
    accounts = [(await journey.staff("reviewer", f"登录压测{i:02d}")).phone for i in range(min(size, 10))]
    ok = failed = 0
    while time.monotonic() < until:
        results = await asyncio.gather(
            *(journey.api.password_login(accounts[i % len(accounts)], STAFF_PASSWORD) for i in range(size)),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, httpx.Response) and r.status_code == 200:
                ok += 1
            else:
                failed += 1
        await asyncio.sleep(max(0.0, min(15.0, until - time.monotonic())))
    return ok, failed


def start_portal(platform: Any) -> str:
    """The portal as its own process, a client of the platform's gateway; its URL."""
    processes = platform.processes
    processes.overrides[registry.PORTAL.name] = {
        "WEB_API_URL": platform.gateway_url,
        "WEB_TRUSTED_PROXY_HOPS": "0",
    }
    return str(processes.start(registry.PORTAL.name, registry.PORTAL.app, free_port(), timeout=120))


async def read_pages(url: str, rate: float, stop: asyncio.Event) -> tuple[int, int]:
    """The portal's public pages at ``rate``/s until ``stop``: (answered 200, other)."""
    ok = failed = 0
    pages = ("/", "/products", "/notices")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(path: str) -> None:
            nonlocal ok, failed
            try:
                r = await client.get(path)
            except httpx.HTTPError:
                failed += 1
                return
            if r.status_code == 200:
                ok += 1
            else:
                failed += 1

        tasks = []
        i = 0
        while not stop.is_set() and rate > 0:
            tasks.append(asyncio.create_task(one(pages[i % len(pages)])))
            i += 1
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return ok, failed


async def run(args: argparse.Namespace) -> dict[str, list[Sample]]:
    """Every process's samples."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    began = time.monotonic()
    try:
        env = {**FOOTPRINT_ENV, "DB_POOL_SIZE": str(args.pool)}
        async with platform_for_module(POSTGRES_URL, AMQP_URL, workdir, extra_env=env) as platform:
            portal = await asyncio.to_thread(start_portal, platform)
            pids = {name: p.pid for name, p in platform.processes.procs.items()}
            sampler = Sampler(pids)
            sampler.start()
            try:
                sampler.phase = "idle"
                await asyncio.sleep(args.idle)
                sampler.phase = "prepare"
                async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60) as client:
                    journey = await Journey.start(platform, client)
                    saga = Saga(journey, to_plain_url(journey.database_urls()["orders"]), pids)
                    await saga.prepare(args.enterprises)
                    sampler.phase = "load"
                    stop_pages = asyncio.Event()
                    pages = asyncio.create_task(read_pages(portal, args.pages, stop_pages))
                    until = time.monotonic() + args.seconds
                    fixed, (signed_in, login_failures) = await asyncio.gather(
                        saga.fixed_rate(args.rate, args.seconds),
                        login_bursts(journey, until, args.logins),
                    )
                    print(
                        f"mixed load: {fixed['decided']} orders decided at {args.rate:g}/s "
                        f"(POST p99 {fixed['post_p99_ms']:.0f} ms, {fixed['failed']} failed), "
                        f"{signed_in} sign-ins ({login_failures} failed)"
                    )
                    if args.saturate:
                        sampler.phase = "saturation"
                        saturated = await saga.saturate(args.connections, args.saturate)
                        print(
                            f"saturation: {saturated.decided} orders, {saturated.per_second:.1f} decided/s, "
                            f"{args.connections} connections"
                        )
                    if args.journey:
                        sampler.phase = "journey"
                        await journey_phase(saga, args.journey, args.journey_rate)
                    stop_pages.set()
                    shown, not_shown = await pages
                    print(f"portal: {shown} pages read ({not_shown} failed)")
                    sampler.phase = "end"
            finally:
                sampler.stop()
    finally:
        dropper.flush()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nran {time.monotonic() - began:.0f} s in all")
    return sampler.samples


def report(samples: dict[str, list[Sample]], json_file: str | None) -> None:
    table = footprints(samples)
    load1, load5, _ = os.getloadavg()
    print(
        f"footprint: {len(next(iter(samples.values())))} "
        f"samples per process every {INTERVAL} s; {psutil.cpu_count()} cores, load average now "
        f"{load1:.1f} (1 min) {load5:.1f} (5 min)"
    )
    rows: list[tuple[str, ...]] = [
        (
            "process",
            "idle RSS",
            "steady RSS",
            "peak RSS",
            "p95 CPU",
            "peak CPU",
            "requests cpu/mem",
            "limits cpu/mem",
        )
    ]
    for f in table:
        rows.append(
            (
                f.name,
                f"{f.idle_mib:.0f} Mi",
                f"{f.steady_mib:.0f} Mi",
                f"{f.peak_mib:.0f} Mi",
                f"{f.p95_cores:.2f}",
                f"{f.peak_cores:.2f}",
                f"{f.cpu_request_m}m / {f.memory_request_mi}Mi",
                f"{f.cpu_limit_m}m / {f.memory_limit_mi}Mi",
            )
        )
    print_table(rows)
    if json_file:
        Path(json_file).write_text(
            json.dumps(
                [
                    {
                        **f.__dict__,
                        "cpu_request_m": f.cpu_request_m,
                        "cpu_limit_m": f.cpu_limit_m,
                        "memory_request_mi": f.memory_request_mi,
                        "memory_limit_mi": f.memory_limit_mi,
                    }
                    for f in table
                ],
                indent=2,
            )
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--idle", type=float, default=20.0, help="seconds of the idle phase")
    p.add_argument("--enterprises", type=int, default=20)
    p.add_argument("--seconds", type=float, default=120.0, help="seconds of the mixed load")
    p.add_argument("--rate", type=float, default=20.0, help="orders per second during the mixed load")
    p.add_argument("--logins", type=int, default=20, help="password sign-ins per burst (every 15 s)")
    p.add_argument("--saturate", type=float, default=20.0, help="seconds of wrk on POST /orders (0: none)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--pages", type=float, default=4.0, help="portal pages per second, all along the load")
    p.add_argument(
        "--journey", type=int, default=20, metavar="N", help="orders through the rest of the journey"
    )
    p.add_argument("--journey-rate", type=float, default=2.0)
    p.add_argument(
        "--pool",
        type=int,
        default=4,
        help="DB_POOL_SIZE of each service (deploy/k8s's: 4; the server is shared)",
    )
    p.add_argument("--json", metavar="FILE", help="the table as JSON too")
    args = p.parse_args()
    try:
        samples = asyncio.run(run(args))
    except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench/footprint.py failed: {exc!r}", file=sys.stderr)
        return 2
    report(samples, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
