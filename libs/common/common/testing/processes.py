"""Start services as real processes (uvicorn) for end-to-end tests and benchmarks."""

from __future__ import annotations

import signal
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
    """Services started in order; each waited for on its /readyz; all stopped on exit.

    ``overrides`` holds settings of one process on top of ``env`` (a fault test points one
    service at a proxy of its own); ``kill`` and ``restart`` crash one process and start it
    again as it was (same factory, port and settings; its log goes on in the same file)."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    # name -> (factory, port), as first started
    specs: dict[str, tuple[str, int]] = field(default_factory=dict)

    def env_for(self, name: str) -> dict[str, str]:
        return {**self.env, **self.overrides.get(name, {})}

    def launch(self, name: str, factory: str, port: int, *, append: bool = False) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (``start`` waits)."""
        log = self.logs / f"{name}.log"
        with log.open("ab" if append else "wb") as out:
            proc = subprocess.Popen(
                processes.uvicorn_command(factory, port),
                env=self.env_for(name),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        self.specs[name] = (factory, port)
        return proc

    def ready(self, name: str, *, timeout: float = 60) -> str:
        _factory, port = self.specs[name]
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", self.procs[name], self.logs / f"{name}.log", timeout)
        self.urls[name] = url
        return url

    def start(self, name: str, factory: str, port: int, *, timeout: float = 60) -> str:
        self.launch(name, factory, port)
        return self.ready(name, timeout=timeout)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine or a container dies."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def restart(self, name: str, *, timeout: float = 60) -> str:
        """Start the (stopped or killed) process again as it was first started."""
        if self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        factory, port = self.specs[name]
        self.launch(name, factory, port, append=True)
        return self.ready(name, timeout=timeout)

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
