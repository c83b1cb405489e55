"""Gateway overhead: an authenticated read straight to identity vs the same read through the gateway.

    uv run python bench/gateway_overhead.py            # make bench
    uv run python bench/gateway_overhead.py --duration 15 --rounds 3 --concurrency 16 --tool python

One run: creates two fresh databases (unique names), starts identity and the gateway as
separate uvicorn processes exactly as ``python -m gateway.launcher up`` does (distributed
mode, RabbitMQ transport on a benchmark-only exchange / queue prefix), registers a user through
the development helpers, then loads ``GET /api/v1/me`` with a fixed number of keep-alive
connections, (a) straight to identity and (b) through the gateway, after a warm-up of each.
Prints requests/s, p50 and p99 for both, the throughput ratio and the p50 the gateway adds,
each process's resident memory idle after start and after the load, and whether the aims of
the issue are met. Everything it started is stopped and everything it created (databases,
queues, exchanges, temporary files) is removed at the end, also on Ctrl-C or failure.

The load generator is ``wrk`` when it is installed (``apt-get install wrk``), else a small
asyncio HTTP/1.1 keep-alive client run in its own process (``--tool python``). Either way it
shares the machine's cores with the two servers: the output says how many there are.

This is a script that prints figures, not a test: it exits 0 when it ran, aims met or not
(``--strict`` makes a missed aim exit 1), and 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.processes import free_port, uvicorn_command, wait_ready

# Aims of the issue.
AIM_RATIO = 0.75  # gateway throughput / direct throughput
AIM_ADDED_P50_MS = 2.0
AIM_IDLE_RSS_MB = 150.0

ME = "/api/v1/me"

# The processes this run started, stopped in ``finally`` whatever happens.
_STARTED: list[subprocess.Popen[bytes]] = []


# --------------------------------------------------------------------------------------------
# load generators (each runs as a process of its own, never inside the servers)
# --------------------------------------------------------------------------------------------

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_s":%.6f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_ms":%.4f,"p90_ms":%.4f,"p99_ms":%.4f,"mean_ms":%.4f,"max_ms":%.4f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, latency.max / 1000))
end
"""


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    cpu: dict[str, float] = field(default_factory=dict)  # process name -> % of one core
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)  # server -> CPU ms / request

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class LoadGenerator:
    name = "?"

    def run(
        self, url: str, token: str, concurrency: int, duration: float, rate: float | None = None
    ) -> LoadResult:
        raise NotImplementedError


class Wrk(LoadGenerator):
    def __init__(self, path: str, threads: int, workdir: Path) -> None:
        self.path = path
        self.threads = threads
        self.script = workdir / "report.lua"
        self.script.write_text(WRK_LUA)
        version = subprocess.run([path, "-v"], capture_output=True, text=True).stdout.splitlines()
        self.name = f"wrk ({(version or ['?'])[0].split(' [')[0].strip()}, {threads} thread(s), closed loop)"

    def run(
        self, url: str, token: str, concurrency: int, duration: float, rate: float | None = None
    ) -> LoadResult:
        if rate:
            raise ValueError("wrk has no fixed-rate mode")
        cmd = [
            self.path,
            f"-t{min(self.threads, concurrency)}",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-s",
            str(self.script),
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ]
        out = _run_child(cmd)
        return _parse_report(out, "wrk")


class PythonLoad(LoadGenerator):
    """This file's ``_loadgen`` sub-command, in a separate Python process."""

    def __init__(self) -> None:
        try:
            import uvloop  # noqa: F401

            loop = "uvloop"
        except ImportError:
            loop = "asyncio"
        self.name = f"python asyncio HTTP/1.1 keep-alive client ({loop}), 1 process, closed loop"

    def run(
        self, url: str, token: str, concurrency: int, duration: float, rate: float | None = None
    ) -> LoadResult:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "_loadgen",
            "--url",
            url,
            "--token",
            token,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            *(["--rate", str(rate)] if rate else []),
        ]
        out = _run_child(cmd)
        return _parse_report(out, "python load generator")


def _run_child(cmd: list[str]) -> str:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _STARTED.append(proc)
    try:
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted: do not leave the load running
            proc.kill()
            proc.wait()
        _STARTED.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")


def _parse_report(out: str, tool: str) -> LoadResult:
    for line in out.splitlines():
        if line.startswith("BENCHJSON "):
            return LoadResult(**json.loads(line[len("BENCHJSON ") :]))
    raise RuntimeError(f"no report from {tool}:\n{out[-2000:]}")


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def _loadgen(
    url: str, token: str, concurrency: int, duration: float, rate: float | None = None
) -> dict[str, Any]:
    """Closed loop (``rate`` None): ``concurrency`` keep-alive connections, each sends its next
    request when the previous answer is in; latency per request, connection set-up excluded.

    Open loop (``rate`` given): requests are due at a fixed ``rate`` whatever the answers do,
    each on a free keep-alive connection (a new one when none is free, at most ``concurrency``
    in flight, beyond that it waits); latency counts from when the request was due, so any
    waiting is included (no coordinated omission)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\nUser-Agent: bench-loadgen\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]

    async def read_response(reader: asyncio.StreamReader) -> int:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        return status

    async def connect() -> Conn | None:
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            errors["connect"] += 1
            await asyncio.sleep(0.05)
            return None

    async def exchange(conn: Conn, since: float, deadline: float) -> bool:
        """One request on ``conn``; False when the connection is no longer usable."""
        reader, writer = conn
        try:
            writer.write(request)
            status = await asyncio.wait_for(read_response(reader), 5)
        except TimeoutError:
            errors["timeout"] += 1
            writer.close()
            return False
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors["read"] += 1
            writer.close()
            return False
        done = time.perf_counter()
        if done <= deadline:
            latencies.append(done - since)
            if not 200 <= status < 400:
                errors["status"] += 1
        return True

    started = time.perf_counter()
    deadline = started + duration
    if rate is None:

        async def worker() -> None:
            conn: Conn | None = None
            while time.perf_counter() < deadline:
                if conn is None:
                    conn = await connect()
                    continue
                if not await exchange(conn, time.perf_counter(), deadline):
                    conn = None
            if conn is not None:
                conn[1].close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        idle: list[tuple[float, Conn]] = []
        slots = asyncio.Semaphore(concurrency)

        def take_idle() -> Conn | None:
            # The most recently used first; none the server may have closed meanwhile (uvicorn
            # drops a keep-alive connection after 5 idle seconds).
            while idle:
                since, conn = idle.pop()
                if time.perf_counter() - since < 3 and not conn[0].at_eof():
                    return conn
                conn[1].close()
            return None

        async def one(due: float) -> None:
            async with slots:
                conn = take_idle() or await connect()
                if conn is not None and await exchange(conn, due, deadline + 5):
                    idle.append((time.perf_counter(), conn))

        tasks = []
        i = 0
        while (due := started + i / rate) < deadline:
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
            i += 1
        await asyncio.gather(*tasks)
        for _since, (_reader, writer) in idle:
            writer.close()
    elapsed = min(time.perf_counter(), deadline) - started
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "duration_s": elapsed,
        "errors": errors,
        "p50_ms": _percentile(ms, 50),
        "p90_ms": _percentile(ms, 90),
        "p99_ms": _percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else 0.0,
        "max_ms": ms[-1] if ms else 0.0,
    }


def loadgen_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gateway_overhead.py _loadgen")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--rate", type=float, default=None)
    a = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_loadgen(a.url, a.token, a.concurrency, a.duration, a.rate))
    print("BENCHJSON " + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# processes, memory, CPU
# --------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (uvicorn runs in one process here)."""
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for c in children:
        found.append(int(c))
        found.extend(_descendants(int(c)))
    return found


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def stop_processes() -> None:
    for proc in reversed(_STARTED):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in list(_STARTED):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _STARTED.clear()


# --------------------------------------------------------------------------------------------
# databases and broker objects of this run
# --------------------------------------------------------------------------------------------


async def _pg(server_url: str, *statements: str) -> None:
    import asyncpg

    from common.settings import database_in

    conn = await asyncpg.connect(database_in(server_url, "postgres"))
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


def create_databases(server_url: str, names: list[str]) -> None:
    asyncio.run(_pg(server_url, *(f'CREATE DATABASE "{n}"' for n in names)))


def drop_databases(server_url: str, names: list[str]) -> None:
    asyncio.run(_pg(server_url, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)))


def delete_broker_objects(amqp_url: str, exchange: str, prefix: str) -> list[str]:
    """Delete this run's queues (all named with ``prefix``) and exchanges; return the queues."""
    from common.testing.rabbit import RabbitNamespace

    extra: list[str] = []
    if shutil.which("rabbitmqctl"):  # anything else this run declared under its prefix
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if listed.returncode == 0:
            extra = [n.strip() for n in listed.stdout.splitlines() if n.strip().startswith(prefix)]
    namespace = RabbitNamespace(url=amqp_url, exchange=exchange, prefix=prefix, services=["identity"])
    return asyncio.run(namespace.cleanup(extra))


# --------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------


async def _register(gateway: str) -> tuple[str, str]:
    import httpx

    from common.testing.api_client import ApiDriver

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        session = await ApiDriver(client).register(enterprise_name="广西基准测试制造有限公司")
    return session.access_token, session.phone


def _check_me(base: str, token: str, phone: str) -> None:
    import httpx

    r = httpx.get(base + ME, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if r.status_code != 200 or r.json()["user"]["phone"] != phone:
        raise RuntimeError(f"GET {base}{ME} answered {r.status_code}: {r.text[:300]}")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    rss_idle: float = 0.0
    rss_after: float = 0.0


def _machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} usable core(s) of {os.cpu_count()} ({model or platform.machine()}){mem}, Linux {platform.release()}"


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def _installed(module: str) -> str:
    import importlib.util

    return "yes" if importlib.util.find_spec(module) else "no"


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(
    gen: LoadGenerator,
    procs: list[Proc],
    url: str,
    token: str,
    concurrency: int,
    duration: float,
    rate: float | None = None,
) -> LoadResult:
    """One measurement, with the CPU each server, the load generator and the whole machine
    used meanwhile (in % of one core)."""
    before = {p.name: cpu_seconds(p.proc.pid) for p in procs}
    gen_before, (busy0, _t0) = _children_cpu(), _machine_busy()
    t0 = time.monotonic()
    result = gen.run(url, token, concurrency, duration, rate)
    wall = time.monotonic() - t0
    busy1, _t1 = _machine_busy()
    used = {p.name: cpu_seconds(p.proc.pid) - before[p.name] for p in procs}
    result.cpu = {name: 100 * seconds / wall for name, seconds in used.items()}
    result.cpu_ms_per_request = {
        name: 1000 * seconds / result.requests for name, seconds in used.items() if result.requests
    }
    result.cpu["load generator"] = 100 * (_children_cpu() - gen_before) / wall
    result.cpu["whole machine"] = 100 * (busy1 - busy0) / wall
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _summarize(rs: list[LoadResult]) -> dict[str, Any]:
    return {
        "rps": _mean([x.rps for x in rs]),
        "p50": _mean([x.p50_ms for x in rs]),
        "p99": _mean([x.p99_ms for x in rs]),
        "errors": sum(x.error_count for x in rs),
        "cpu_ms": {
            proc: _mean([x.cpu_ms_per_request.get(proc, 0.0) for x in rs]) for proc in ("identity", "gateway")
        },
    }


def run(args: argparse.Namespace) -> int:
    server_url = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    tag = f"bench_{uuid.uuid4().hex[:10]}"
    dbs = {"identity": f"{tag}_identity", "gateway": f"{tag}_gateway"}
    exchange, prefix = f"{tag}.events", f"{tag}."
    retry_delays = [1, 5, 30, 120, 600]
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}_"))
    procs: list[Proc] = []
    dbs_created: list[str] = []
    ok = False

    from common.settings import database_in

    id_port, gw_port = free_port(args.identity_port), free_port(args.gateway_port)
    identity_url, gateway_url = f"http://127.0.0.1:{id_port}", f"http://127.0.0.1:{gw_port}"
    env = dict(os.environ)
    env.update(
        {
            "ENVIRONMENT": "development",
            "POSTGRES_URL": server_url,
            "IDENTITY_DATABASE_URL": database_in(server_url, dbs["identity"]),
            "GATEWAY_DATABASE_URL": database_in(server_url, dbs["gateway"]),
            "AMQP_URL": amqp_url,
            "BUS_TRANSPORT": "rabbitmq",
            "BUS_EXCHANGE": exchange,
            "BUS_QUEUE_PREFIX": prefix,
            "BUS_RETRY_DELAYS": json.dumps(retry_delays),
            "IDENTITY_JWKS_URL": f"{identity_url}/.well-known/jwks.json",
            "GATEWAY_IDENTITY_URL": identity_url,
            "GATEWAY_RATE_LIMIT_PER_IP": str(10**12),
            "GATEWAY_RATE_LIMIT_PER_USER": str(10**12),
            "IDENTITY_ACCESS_TTL_SECONDS": str(max(3600, int(args.duration * args.rounds * 4 + 1800))),
            "IDENTITY_SEED_DEMO": "false",
            "IDENTITY_STORAGE_URL": str(workdir / "files"),
            "LOG_LEVEL": args.log_level,
        }
    )
    if args.tool in ("auto", "wrk") and (wrk := shutil.which("wrk")):
        gen: LoadGenerator = Wrk(wrk, args.wrk_threads, workdir)
    elif args.tool == "wrk":
        print("wrk is not installed (apt-get install -y wrk); use --tool python", file=sys.stderr)
        return 2
    else:
        gen = PythonLoad()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    print("Gateway overhead benchmark: GET /api/v1/me, direct to identity vs through the gateway")
    print(f"  machine      {_machine()}; load average before: {_loadavg()}")
    print(
        f"  python       {platform.python_version()}; uvicorn loop/http = auto "
        f"(uvloop installed: {_installed('uvloop')}, httptools installed: {_installed('httptools')})"
    )
    print(f"  load         {gen.name}, in its own process; warm-up {args.warmup:g} s per target")
    print(
        "  note         the load generator, identity, the gateway, PostgreSQL, RabbitMQ and whatever else\n"
        "               runs on this machine share these cores ('whole machine' CPU below shows how busy)"
    )
    print(
        f"  namespace    databases {', '.join(dbs.values())}; exchange {exchange}; queues {prefix}*; "
        f"LOG_LEVEL={args.log_level}"
    )
    print(flush=True)
    try:
        create_databases(server_url, list(dbs.values()))
        dbs_created = list(dbs.values())

        def spawn(name: str, factory: str, port: int) -> Proc:
            log = workdir / f"{name}.log"
            cmd = uvicorn_command(factory, port)
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            _STARTED.append(proc)
            p = Proc(name, proc, port, log)
            procs.append(p)
            return p

        t0 = time.monotonic()
        identity = spawn("identity", "identity.main:create_app", id_port)
        wait_ready(f"{identity_url}/readyz", identity.proc)
        gateway = spawn("gateway", "gateway.main:create_app", gw_port)
        wait_ready(f"{gateway_url}/readyz", gateway.proc)
        print(
            f"started identity (pid {identity.proc.pid}, :{id_port}) and gateway (pid {gateway.proc.pid}, "
            f":{gw_port}) in {time.monotonic() - t0:.1f} s",
            flush=True,
        )
        time.sleep(args.settle)
        for p in procs:
            p.rss_idle = rss_mb(p.proc.pid)

        token, phone = asyncio.run(_register(gateway_url))
        _check_me(identity_url, token, phone)
        _check_me(gateway_url, token, phone)
        print(
            f"registered {phone[:3]}****{phone[-4:]}; GET {ME} answers 200 directly and through the gateway",
            flush=True,
        )

        targets = {"direct": identity_url + ME, "gateway": gateway_url + ME}
        for name, url in targets.items():
            if args.warmup > 0:
                w = gen.run(url, token, args.concurrency, args.warmup)
                print(f"  warm-up {name:<8} {w.rps:8.0f} req/s  p50 {w.p50_ms:6.2f} ms", flush=True)

        def phase(
            title: str,
            load: LoadGenerator,
            rounds: int,
            concurrency: int,
            duration: float,
            rate: float | None = None,
        ) -> dict[str, dict[str, Any]]:
            print(f"\n{title}", flush=True)
            runs: dict[str, list[LoadResult]] = {"direct": [], "gateway": []}
            for r in range(rounds):
                for name in ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]:
                    res = measure(load, procs, targets[name], token, concurrency, duration, rate)
                    runs[name].append(res)
                    cpu = ", ".join(f"{k} {v:.0f}%" for k, v in res.cpu.items())
                    per_request = ", ".join(
                        f"{k} {v:.2f} ms" for k, v in res.cpu_ms_per_request.items() if v >= 0.005
                    )
                    err = f"  ERRORS {res.errors}" if res.error_count else ""
                    print(
                        f"  round {r + 1} {name:<8} {res.rps:8.1f} req/s  p50 {res.p50_ms:7.2f} ms  "
                        f"p99 {res.p99_ms:7.2f} ms  ({res.requests} requests){err}\n"
                        f"          CPU, % of one core: {cpu}; CPU per request: {per_request}",
                        flush=True,
                    )
            summary = {name: _summarize(rs) for name, rs in runs.items()}
            d, g = summary["direct"], summary["gateway"]
            print(f"  {'(mean of rounds)':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>9}")
            for label, x in (("direct -> identity", d), ("through the gateway", g)):
                print(f"  {label:<22}{x['rps']:>10.1f}{x['p50']:>10.2f}{x['p99']:>10.2f}{x['errors']:>9}")
            print(
                f"  throughput ratio {g['rps'] / d['rps'] if d['rps'] else 0:.2f}; the gateway adds "
                f"{g['p50'] - d['p50']:+.2f} ms at p50, {g['p99'] - d['p99']:+.2f} ms at p99"
            )
            print(
                f"  CPU per request: identity alone {d['cpu_ms']['identity']:.2f} ms; through the gateway "
                f"identity {g['cpu_ms']['identity']:.2f} ms + gateway {g['cpu_ms']['gateway']:.2f} ms",
                flush=True,
            )
            summary["runs"] = {k: [vars(x) for x in v] for k, v in runs.items()}  # type: ignore[assignment]
            return summary

        tool = gen.name.split(" (")[0]
        main = phase(
            f"A. {args.concurrency} connections, closed loop (each sends its next request as soon as "
            f"the answer is in), {args.rounds} x {args.duration:g} s per target, {tool}",
            gen,
            args.rounds,
            args.concurrency,
            args.duration,
        )
        phases: dict[str, Any] = {"main": main}
        if args.single_duration > 0:
            phases["single"] = phase(
                f"B. 1 connection (no queueing: the cost of the extra hop itself), {args.single_duration:g} s "
                f"per target, {tool}",
                gen,
                1,
                1,
                args.single_duration,
            )
        if args.moderate_fraction > 0 and main["direct"]["rps"] > 0:
            rate = round(args.moderate_fraction * main["direct"]["rps"], 1)
            phases["moderate"] = phase(
                f"C. fixed rate {rate:g} req/s ({args.moderate_fraction:.0%} of the direct throughput in A), "
                f"open loop (latency counted from when each request was due), {args.moderate_rounds} x "
                f"{args.moderate_duration:g} s per target, python load generator",
                PythonLoad(),
                args.moderate_rounds,
                64,
                args.moderate_duration,
                rate,
            )
        time.sleep(args.settle)
        for p in procs:
            p.rss_after = rss_mb(p.proc.pid)

        d, g = main["direct"], main["gateway"]
        ratio = g["rps"] / d["rps"] if d["rps"] else 0.0
        added = g["p50"] - d["p50"]
        print()
        print("Resident memory (VmRSS)")
        print(f"  {'':<12}{'idle after start':>18}{'after the load':>16}")
        for p in procs:
            print(f"  {p.name:<12}{p.rss_idle:>15.1f} MB{p.rss_after:>13.1f} MB")
        print()
        aims = [
            (
                f"gateway keeps >= {AIM_RATIO:.0%} of direct throughput (A)",
                ratio >= AIM_RATIO,
                f"{ratio:.0%} ({g['rps']:.0f} vs {d['rps']:.0f} req/s)",
            ),
            (
                f"gateway adds <= {AIM_ADDED_P50_MS:g} ms at p50 (A, {args.concurrency} connections)",
                added <= AIM_ADDED_P50_MS,
                f"{added:+.2f} ms ({g['p50']:.2f} vs {d['p50']:.2f} ms)",
            ),
        ]
        if "moderate" in phases:
            md, mg = phases["moderate"]["direct"], phases["moderate"]["gateway"]
            m_added = mg["p50"] - md["p50"]
            aims.append(
                (
                    f"gateway adds <= {AIM_ADDED_P50_MS:g} ms at p50 (C, fixed moderate rate)",
                    m_added <= AIM_ADDED_P50_MS,
                    f"{m_added:+.2f} ms ({mg['p50']:.2f} vs {md['p50']:.2f} ms)",
                )
            )
        for p in procs:
            aims.append(
                (
                    f"{p.name} idle RSS <= {AIM_IDLE_RSS_MB:g} MB",
                    p.rss_idle <= AIM_IDLE_RSS_MB,
                    f"{p.rss_idle:.1f} MB",
                )
            )
        print("Aims")
        for label, met, value in aims:
            print(f"  [{'met' if met else 'MISSED'}] {label}: {value}")
        if any(x[k]["errors"] for x in phases.values() for k in ("direct", "gateway")):
            print("  warning: the load saw errors; the figures above are not trustworthy")
        cores = os.cpu_count() or 1
        busiest = max(
            (
                run["cpu"].get("whole machine", 0.0)
                for x in phases.values()
                for runs in x["runs"].values()
                for run in runs
            ),
            default=0.0,
        )
        if busiest >= 95 * cores:
            print(
                f"  note: the whole machine was busy up to {busiest:.0f}% of {100 * cores}% during some rounds; "
                "what other processes took shows up as lost throughput and waiting (compare the rounds)"
            )
        print(f"\nload average after: {_loadavg()}")
        ok = True
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "machine": _machine(),
                        "tool": gen.name,
                        "concurrency": args.concurrency,
                        "duration": args.duration,
                        "rounds": args.rounds,
                        "ratio": ratio,
                        "added_p50_ms": added,
                        "phases": phases,
                        "rss_mb": {p.name: {"idle": p.rss_idle, "after": p.rss_after} for p in procs},
                        "aims": [{"aim": a, "met": m, "value": v} for a, m, v in aims],
                    },
                    indent=2,
                )
            )
        return 1 if args.strict and not all(m for _, m, _ in aims) else 0
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - report, clean up, exit 2
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        for p in procs:
            with contextlib.suppress(OSError):
                tail = p.log.read_text(errors="replace").splitlines()[-25:]
                print(f"--- last lines of {p.name}'s output ---", *tail, sep="\n", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_processes()
        notes = []
        try:
            if dbs_created:
                drop_databases(server_url, dbs_created)
                notes.append(f"dropped {len(dbs_created)} databases")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"COULD NOT drop databases {dbs_created}: {exc}")
        try:
            delete_broker_objects(amqp_url, exchange, prefix)
            notes.append(f"deleted the queues {prefix}* and the exchanges")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"COULD NOT delete queues {prefix}*: {exc}")
        shutil.rmtree(workdir, ignore_errors=True)
        print(
            f"cleanup: stopped {len(procs)} processes, " + ", ".join(notes),
            file=sys.stderr if not ok else sys.stdout,
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_loadgen":
        return loadgen_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, default=16, help="keep-alive connections (default 16)")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    p.add_argument("--rounds", type=int, default=2, help="measurements per target, interleaved (default 2)")
    p.add_argument("--warmup", type=float, default=3, help="warm-up seconds per target (default 3)")
    p.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto", help="load generator")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: 2 cores are shared)")
    p.add_argument(
        "--single-duration", type=float, default=5, help="seconds per target with 1 connection (0: skip)"
    )
    p.add_argument(
        "--moderate-fraction",
        type=float,
        default=0.5,
        help="fixed-rate phase at this fraction of the direct throughput (0: skip)",
    )
    p.add_argument("--moderate-duration", type=float, default=8, help="seconds per target at the fixed rate")
    p.add_argument("--moderate-rounds", type=int, default=2, help="fixed-rate measurements per target")
    p.add_argument("--settle", type=float, default=2, help="idle seconds before reading memory")
    p.add_argument("--identity-port", type=int, default=8001)
    p.add_argument("--gateway-port", type=int, default=8000)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when an aim is missed")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
