"""A per-run RabbitMQ namespace (its own exchange and queue prefix), deleted afterwards:
tests use it through the ``rabbit`` fixture, the benchmark directly."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.testing import infra


@dataclass
class RabbitNamespace:
    url: str
    exchange: str
    prefix: str
    transports: list[Any] = field(default_factory=list)
    # Consumers run in other processes (end-to-end tests): their queues are deleted too.
    services: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"AMQP_URL": self.url, "BUS_EXCHANGE": self.exchange, "BUS_QUEUE_PREFIX": self.prefix}

    def transport(self, **kwargs: Any) -> Any:
        from common.bus.rabbitmq import RabbitTransport

        kwargs.setdefault("exchange", self.exchange)
        kwargs.setdefault("queue_prefix", self.prefix)
        t = RabbitTransport(self.url, **kwargs)
        self.transports.append(t)
        return t

    async def cleanup(self, extra: Iterable[str] = ()) -> list[str]:
        """Delete every queue and exchange of this namespace (``extra`` too); return the
        queues asked for."""
        import aio_pika

        connection = await aio_pika.connect(self.url, timeout=10)
        try:
            from common import registry
            from common.bus.rabbitmq import DECLARED_QUEUES

            names = {q for q in DECLARED_QUEUES if q.startswith(self.prefix)}
            # Every service declares the registry's whole topology at start, also in processes
            # of their own (end-to-end tests, the benchmarks): delete all of it.
            for service in [*self.services, *registry.topology().bindings]:
                queue = self.prefix + service
                names |= {queue, f"{queue}.dlq", *(f"{queue}.retry.{i}" for i in range(10))}
            names.add(f"{self.exchange}.unrouted")
            names.update(extra)
            for name in names:
                channel = await connection.channel()
                try:
                    await channel.queue_delete(name)
                except Exception:  # noqa: BLE001
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
            channel = await connection.channel()
            for name in (self.exchange, f"{self.exchange}.unrouted"):
                try:
                    await channel.exchange_delete(name)
                except Exception:  # noqa: BLE001
                    channel = await connection.channel()
        finally:
            await connection.close()
        return sorted(names)


def rabbitmq_server_installed() -> bool:
    return (
        Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() or shutil.which("rabbitmq-server") is not None
    )


# For a test that starts a private RabbitMQ node: skipped where rabbitmq-server is not
# installed, but never under CI=true (CI runs RabbitMQ: without it the test fails, loudly).
needs_rabbitmq_server = pytest.mark.skipif(
    not infra.in_ci() and not rabbitmq_server_installed(), reason="rabbitmq-server is not installed"
)


class PrivateRabbitNode:
    """A RabbitMQ node of a test's own (its node name, ports, data folder, cookie), started
    from the installed ``rabbitmq-server`` and killed as the test wants. The shared broker is
    never touched: this is how a test crashes a broker.

        node = PrivateRabbitNode(tmp_path)
        await node.start()         # returns once AMQP answers
        node.kill()                # SIGKILL: no clean shutdown, no flush beyond what it synced
        await node.start()         # the same node again, on its data folder
        node.stop()
    """

    def __init__(self, base: Any, *, name: str | None = None) -> None:
        import socket
        import uuid

        def free_port() -> int:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return int(s.getsockname()[1])

        self.base = Path(base)
        self.node = name or f"voucher-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        import os

        for sub in ("mnesia", "log", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
        )
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            + ":/usr/sbin:/usr/lib/rabbitmq/bin",
            "HOME": str(self.base / "home"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "RABBITMQ_MNESIA_DIR": str(self.base / "mnesia" / "node"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.base / "mnesia" / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.base / "mnesia" / "plugins-expand"),
            "RABBITMQ_QUORUM_DIR": str(self.base / "mnesia" / "node" / "quorum"),
            "RABBITMQ_STREAM_DIR": str(self.base / "mnesia" / "node" / "stream"),
            "ERL_CRASH_DUMP": str(self.base / "erl_crash.dump"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def launch(self) -> None:
        """Start the node's process (``start`` waits for it to answer)."""
        import subprocess

        # The server script itself, not /usr/sbin's wrapper (which switches to the rabbitmq
        # user, who cannot write the test's folder).
        direct = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        server = str(direct) if direct.exists() else (shutil.which("rabbitmq-server") or "rabbitmq-server")
        import atexit

        env = self.env()  # (creates the folders)
        with open(self.base / "server.out", "ab") as log:
            self.process = subprocess.Popen(
                [server], env=env, cwd=self.base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        # Never outlive the test run, whatever happens to the test (a time-out, a failure
        # before its own clean-up).
        atexit.register(self.kill)

    async def start(self, within: float = 90.0) -> None:
        import asyncio

        import aio_pika

        self.launch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"private RabbitMQ node exited: see {self.base / 'server.out'}")
            try:
                connection = await aio_pika.connect(self.url, timeout=2)
                await connection.close()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if loop.time() > deadline:
                    self.kill()
                    raise TimeoutError(f"private RabbitMQ node not up within {within}s") from None
                await asyncio.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the node's whole process group (its beam and helpers; only ours)."""
        import os
        import signal

        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def terminate(self, timeout: float = 60.0) -> None:
        """A clean shutdown (SIGTERM: RabbitMQ syncs and stops)."""
        import os
        import signal
        import subprocess

        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self.kill()  # whatever helper is left in its group
        self.process = None

    def stop(self) -> None:
        self.kill()
