"""Gateway overhead and the CPU an authenticated read costs: ``GET /api/v1/me`` straight at
identity vs the same read through the gateway.

    uv run python bench/gateway_overhead.py                 # make bench
    uv run python bench/gateway_overhead.py --rounds 3 --seconds 15 --json /tmp/gw.json

Identity and the gateway run as separate ``uvicorn --factory`` processes on fresh databases
and a RabbitMQ namespace of the run's own (``bench/_common.py``), as ``make up`` starts them.
A user registers through the development helpers; then wrk loads ``/me`` with 16 keep-alive
connections (closed loop) and with 1, direct and through the gateway, interleaved. Printed:
requests/s, p50/p99, the throughput ratio and the p50 the gateway adds, the **CPU time per
request** of each process (psutil: user + system, the steadiest figure on a shared machine)
and resident memory idle and after the load. Exit 0 when it ran (``--strict``: 1 on a
missed aim), 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx
from _common import BenchRun, Load, Started, print_table, py_spy, where_the_time_goes, wrk

ME = "/api/v1/me"
AIMS = {"ratio": 0.75, "added_p50_ms": 2.0, "idle_rss_mb": 150.0, "identity_cpu_ms": 0.7}


async def register(gateway: str) -> str:
    from common.testing.api_client import ApiDriver

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        session = await ApiDriver(client).register(enterprise_name="广西基准测试制造有限公司")
    return session.access_token


def load(run: BenchRun, target: Started, token: str, connections: int, seconds: float) -> dict[str, Any]:
    before = run.cpu_seconds()
    result: Load = wrk(target.url + ME, token=token, connections=connections, seconds=seconds)
    used = {name: cpu - before[name] for name, cpu in run.cpu_seconds().items()}
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{target.name}: {result.errors} errors, {result.non_2xx} non-2xx answers")
    return {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "cpu_ms": {name: 1000 * s / result.requests for name, s in used.items() if s > 0.005},
    }


def mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def mean_cpu(rows: list[dict[str, Any]]) -> dict[str, float]:
    names = {n for r in rows for n in r["cpu_ms"]}
    return {n: sum(r["cpu_ms"].get(n, 0.0) for r in rows) / len(rows) for n in sorted(names)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with BenchRun("gw") as bench:
        files = str(bench.workdir / "files")
        env = bench.base_env(
            **({"PYTHONPATH": args.servers_from} if args.servers_from else {}),
            IDENTITY_DATABASE_URL=bench.database("identity"),
            GATEWAY_DATABASE_URL=bench.database("gateway"),
            IDENTITY_STORAGE_URL=files,
            IDENTITY_ACCESS_TTL_SECONDS="7200",
            GATEWAY_RATE_LIMIT_PER_IP="100000000",
            GATEWAY_RATE_LIMIT_PER_USER="100000000",
        )
        identity = bench.start("identity", env)
        env |= {
            "IDENTITY_JWKS_URL": f"{identity.url}/.well-known/jwks.json",
            "GATEWAY_IDENTITY_URL": identity.url,
        }
        gateway = bench.start("gateway", env)
        idle = {s.name: s.rss_mb() for s in bench.started.values()}
        token = asyncio.run(register(gateway.url))
        for target in (identity, gateway):  # warm-up
            wrk(target.url + ME, token=token, connections=4, seconds=2)
        phases: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for phase, connections in (("A: 16 connections", 16), ("B: 1 connection", 1)):
            rows: dict[str, list[dict[str, Any]]] = {"direct": [], "gateway": []}
            for n in range(args.rounds):
                order = [("direct", identity), ("gateway", gateway)]
                for label, target in order if n % 2 == 0 else reversed(order):
                    rows[label].append(load(bench, target, token, connections, args.seconds))
            phases[phase] = rows
        if args.profile:
            out = bench.workdir / "identity.collapsed"
            with py_spy(identity.proc.pid, out):
                wrk(identity.url + ME, token=token, connections=16, seconds=args.seconds)
            profile = where_the_time_goes(out, focus=tuple(args.profile_focus or ()))
        after = {s.name: s.rss_mb() for s in bench.started.values()}
    figures: dict[str, Any] = {"phases": phases, "rss_idle_mb": idle, "rss_after_mb": after}
    if args.profile:
        figures["profile"] = profile
    return figures


def report(figures: dict[str, Any]) -> dict[str, bool]:
    met: dict[str, bool] = {}
    for phase, rows in figures["phases"].items():
        direct, via = rows["direct"], rows["gateway"]
        d_cpu, g_cpu = mean_cpu(direct), mean_cpu(via)
        print(f"\n{phase}, closed loop, {len(direct)} round(s) per target")
        print_table(
            [
                ("", "direct -> identity", "through the gateway"),
                ("req/s", f"{mean(direct, 'rps'):.1f}", f"{mean(via, 'rps'):.1f}"),
                (
                    "p50 / p99 ms",
                    f"{mean(direct, 'p50_ms'):.2f} / {mean(direct, 'p99_ms'):.2f}",
                    f"{mean(via, 'p50_ms'):.2f} / {mean(via, 'p99_ms'):.2f}",
                ),
                (
                    "CPU ms / request",
                    ", ".join(f"{n} {v:.3f}" for n, v in d_cpu.items()),
                    ", ".join(f"{n} {v:.3f}" for n, v in g_cpu.items()),
                ),
            ]
        )
        ratio = mean(via, "rps") / mean(direct, "rps")
        added = mean(via, "p50_ms") - mean(direct, "p50_ms")
        print(f"throughput ratio {ratio:.2f}, the gateway adds {added:+.2f} ms at p50")
        if phase.startswith("A"):
            met["ratio"] = ratio >= AIMS["ratio"]
            met["identity_cpu_ms"] = d_cpu.get("identity", 0) <= AIMS["identity_cpu_ms"]
        else:
            met["added_p50_ms"] = added <= AIMS["added_p50_ms"]
    idle, after = figures["rss_idle_mb"], figures["rss_after_mb"]
    print(
        "\nresident memory MB (idle / after the load): "
        + ", ".join(f"{n} {idle[n]:.1f} / {after[n]:.1f}" for n in idle)
    )
    if "profile" in figures:
        print("\nwhere identity's time goes under load A (py-spy):")
        print("\n".join(figures["profile"]))
    met["idle_rss_mb"] = all(v <= AIMS["idle_rss_mb"] for v in idle.values())
    print("aims: " + ", ".join(f"{k} {'met' if v else 'MISSED'} ({AIMS[k]})" for k, v in met.items()))
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then sample identity with py-spy under load A and print where the time goes",
    )
    parser.add_argument(
        "--profile-focus",
        action="append",
        metavar="TEXT",
        help="show only frames containing TEXT (repeatable)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when an aim is missed")
    parser.add_argument(
        "--servers-from",
        metavar="PYTHONPATH",
        help="run the servers from other sources (e.g. an older checkout's libs/common/common, "
        "services/identity and gateway folders, ':'-separated) to compare before and after",
    )
    args = parser.parse_args(argv)
    try:
        figures = run(args)
    except (RuntimeError, OSError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    met = report(figures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({**figures, "aims_met": met}, out, indent=2)
    return 1 if args.strict and not all(met.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
