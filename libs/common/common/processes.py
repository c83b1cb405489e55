"""Running services as local processes: the distributed launcher (make up), the end-to-end
tests and the benchmark start them the same way."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from common.serving import HTTP_PROTOCOL

GRACEFUL_SHUTDOWN_SECONDS = 10


def uvicorn_command(factory: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """``factory`` is ``package.module:create_app``."""
    # X-Forwarded-For is read by our own code (common.http.client_ip) from the configured
    # number of trusted proxies, never by uvicorn (which trusts any loopback client).
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        host,
        "--port",
        str(port),
        "--no-proxy-headers",
        "--no-server-header",
        # A request too large to parse is answered as a problem, not uvicorn's plain text.
        "--http",
        HTTP_PROTOCOL,
        # Open event streams (notifications) never end by themselves: a stop waits this long
        # for them, then closes them (clients reconnect with Last-Event-ID).
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_SECONDS),
    ]


def free_port(preferred: int = 0) -> int:
    """``preferred`` when it is free, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Wait until ``url`` (a /readyz) answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = r.text[:200]
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s ({last})")
