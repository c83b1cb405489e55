"""Start services as real processes (uvicorn) for end-to-end tests and benchmarks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import processes
from common.processes import free_port

__all__ = ["Processes", "free_port", "running", "wait_ready"]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    try:
        processes.wait_ready(url, proc, timeout)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}:\n{log.read_text(errors='replace')[-4000:]}") from None


@dataclass
class Processes:
    """Services started in order; each waited for on its /readyz; all stopped on exit."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def start(self, name: str, factory: str, port: int, *, timeout: float = 60) -> str:
        log = self.logs / f"{name}.log"
        cmd = processes.uvicorn_command(factory, port)
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proc, log, timeout)
        self.urls[name] = url
        return url

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


@contextmanager
def running(env: dict[str, str], logs: Path) -> Iterator[Processes]:
    logs.mkdir(parents=True, exist_ok=True)
    processes = Processes(env=env, logs=logs)
    try:
        yield processes
    finally:
        processes.stop()
