"""What every benchmark script shares: a run of its own (databases, broker names) that is
removed afterwards, services started as ``make up`` starts them, wrk for closed-loop load,
and psutil for CPU time and memory.

    with BenchRun("gw") as run:                        # fresh names; all cleaned up on exit
        identity = run.start("identity", env={...})    # uvicorn --factory, waits for /readyz
        result = wrk(url, token=..., connections=16, seconds=10)
        cpu = run.cpu_seconds()                        # {name: user+system seconds}

Everything the run started is stopped, and everything it created (databases, queues,
exchanges, temporary files) is dropped, on success, on failure, on Ctrl-C and on SIGTERM.
``BUS_TRANSPORT=inprocess`` in the environment runs the services without RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from common import registry
from common.processes import free_port, uvicorn_command, wait_ready
from common.settings import database_in

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

# wrk prints this line from its done() hook: exact percentiles, no parsing of its text.
WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"seconds":%.6f,"errors":%d,"non_2xx":%d,' ..
    '"p50_ms":%.4f,"p99_ms":%.4f}\n', summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(url: str, *, token: str | None = None, connections: int = 16, seconds: float = 10) -> Load:
    """A closed loop of ``connections`` keep-alive connections for ``seconds`` (one thread:
    the machine's cores are for the servers)."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    cmd = [
        path,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        script.name,
    ]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    try:
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("BENCHJSON "))
    return Load(**json.loads(line.removeprefix("BENCHJSON ")))


@dataclass
class Started:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    ps: psutil.Process

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss_mb(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20


@dataclass
class BenchRun:
    """One benchmark run's own databases, broker names and processes."""

    label: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: dict[str, Started] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    @property
    def exchange(self) -> str:
        return f"bench.{self.label}.{self.run_id}"

    @property
    def prefix(self) -> str:
        return f"bench_{self.label}_{self.run_id}_"

    def database(self, name: str) -> str:
        """A fresh database for ``name``; its URL."""
        db = f"bench_{self.run_id}_{name}"
        asyncio.run(_pg(f'CREATE DATABASE "{db}"'))
        self.databases.append(db)
        return database_in(POSTGRES_URL, db)

    def base_env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "WARNING",
            "AMQP_URL": AMQP_URL,
            "BUS_EXCHANGE": self.exchange,
            "BUS_QUEUE_PREFIX": self.prefix,
            **extra,
        }

    def start(self, name: str, env: dict[str, str], port: int | None = None) -> Started:
        """``name`` is a registry service, ``gateway`` or the portal (``web``); waits for its /readyz."""
        row = registry.PORTAL if name == registry.PORTAL.name else None
        if name == "gateway":
            factory, preferred = "gateway.main:create_app", 8000
        else:
            row = row or registry.service(name)
            factory, preferred = row.app, row.port
        port = port or free_port(preferred)
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(uvicorn_command(factory, port), env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        started = Started(name, url, proc, psutil.Process(proc.pid))
        self.started[name] = started
        try:
            wait_ready(f"{url}/readyz", proc)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}\n{(self.workdir / f'{name}.log').read_text(errors='replace')[-3000:]}"
            ) from None
        return started

    def cpu_seconds(self) -> dict[str, float]:
        return {name: s.cpu_seconds() for name, s in self.started.items()}

    # --- clean-up ----------------------------------------------------------------------------

    def __enter__(self) -> BenchRun:
        def stop(signum: int, _frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for s in reversed(list(self.started.values())):
            if s.proc.poll() is None:
                s.proc.terminate()
        for s in self.started.values():
            try:
                s.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                s.proc.kill()
        self.started.clear()
        if self.databases:
            asyncio.run(_pg(*(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in self.databases)))
            self.databases.clear()
        if os.environ.get("BUS_TRANSPORT") != "inprocess":
            try:
                asyncio.run(_delete_broker_objects(self.exchange, self.prefix))
            except (OSError, TimeoutError) as exc:
                print(f"could not delete this run's broker objects: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.workdir, ignore_errors=True)


async def _pg(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_in(POSTGRES_URL, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _delete_broker_objects(exchange: str, prefix: str) -> None:
    from common.testing.rabbit import RabbitNamespace

    namespace = RabbitNamespace(url=AMQP_URL, exchange=exchange, prefix=prefix, services=list(registry.NAMES))
    await namespace.cleanup([])


def _width(cell: str) -> int:
    """Columns on a terminal: a hanzi takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in cell)


def print_table(rows: Sequence[tuple[str, ...]], out: Any = sys.stdout) -> None:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)


@contextlib.contextmanager
def py_spy(pid: int, out: Path, *, rate: int = 250) -> Iterator[None]:
    """Sample the process ``pid`` with py-spy while the block runs (collapsed stacks in ``out``)."""
    path = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = subprocess.Popen(
        [
            path,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()


def where_the_time_goes(collapsed: Path, *, top: int = 18, focus: tuple[str, ...] = ()) -> list[str]:
    """Read py-spy's collapsed stacks: the share of samples under each function (inclusive) and
    spent in it (self), busiest first; idle samples (the event loop waiting) are left out."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(("select (selectors.py", "_run_once (asyncio/base_events.py")):
            continue  # waiting in epoll, not working
        n = int(count)
        total += n
        for name in {f.split(" (")[0] + " " + _module(f) for f in frames}:
            inclusive[name] += n
        own[frames[-1].split(" (")[0] + " " + _module(frames[-1])] += n
        by_package[_package(frames[-1])] += n
    if not total:
        return ["no busy samples"]
    lines = [f"{total} busy samples", "  self time by package:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in by_package.most_common(12)]
    picked = [k for k in inclusive if any(f in k for f in focus)] if focus else []
    for title, counter, keys in (
        ("inclusive (under this frame)", inclusive, picked or [k for k, _ in inclusive.most_common(top)]),
        ("self (in this frame)", own, [k for k, _ in own.most_common(top)]),
    ):
        lines.append(f"  {title}:")
        for key in sorted(keys, key=lambda k: -counter[k])[:top]:
            lines.append(f"    {100 * counter[key] / total:5.1f}%  {key}")
    return lines


def _package(frame: str) -> str:
    """``sqlalchemy``, ``fastapi``, ``asyncio``, ``common``, ``identity``...: who the frame belongs to."""
    module = _module(frame).strip("()")
    head = module.split("/", 1)[0]
    return head.removesuffix(".py") if head else "?"


def _module(frame: str) -> str:
    inside = frame.partition(" (")[2].rstrip(")")
    file = inside.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/libs/common/", "/services/", "/gateway/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"({file})"
