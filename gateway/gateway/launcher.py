"""Starting the platform: all-in-one (one process, embedded PostgreSQL, in-process bus) or
distributed (every service its own process, on the configured PostgreSQL and RabbitMQ).

    python -m gateway.launcher allinone   # make run on a bare machine
    python -m gateway.launcher up         # make up: identity :8001, gateway :8000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import uvicorn

from common.auth import KeySet
from common.bus.inprocess import InProcessTransport
from common.embedded import EmbeddedPostgres
from common.processes import uvicorn_command, wait_ready

# Service name -> (import path of its app factory, port). Later services join this table.
SERVICES: dict[str, tuple[str, int]] = {
    "identity": ("identity.main:create_app", 8001),
}


def _banner(accounts: list[object], port: int) -> str:
    lines = [
        "",
        "=" * 72,
        f"  广西制造业企业培优育强服务券管理平台 is running: http://127.0.0.1:{port}",
        f"  API docs:  http://127.0.0.1:{port}/docs     API base: http://127.0.0.1:{port}/api/v1",
        "",
        "  Demo accounts (password sign-in: POST /api/v1/auth/login with a captcha):",
    ]
    for a in accounts:
        org = f"  {a.organization}" if a.organization else ""  # type: ignore[attr-defined]
        lines.append(f"    {a.label:<12} phone {a.phone}  password {a.password}{org}")  # type: ignore[attr-defined]
    lines += [
        "",
        "  Development helpers: GET /api/v1/captcha, then GET /api/v1/dev/captcha/{captcha_id}",
        "  gives its answer; GET /api/v1/dev/sms-codes/latest?phone=... the last SMS code.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


async def _allinone(port: int) -> None:
    from gateway.config import Settings as GatewaySettings
    from gateway.main import create_app as create_gateway
    from gateway.proxy import Upstreams
    from identity.config import Settings as IdentitySettings
    from identity.main import create_app as create_identity

    transport = InProcessTransport()
    await transport.start()
    keys = KeySet()
    identity_settings = IdentitySettings(
        bus_transport="inprocess", seed_demo=os.environ.get("ENVIRONMENT") == "development"
    )
    transport.retry_delays = identity_settings.bus_retry_delays
    identity_app = create_identity(identity_settings, transport=transport, key_set=keys)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(identity_app.router.lifespan_context(identity_app))
        gateway_app = create_gateway(
            GatewaySettings(port=port),
            upstreams=Upstreams.in_process({"identity": identity_app}),
            key_set=keys,
        )
        server = uvicorn.Server(uvicorn.Config(gateway_app, host="0.0.0.0", port=port, log_config=None))
        accounts = getattr(identity_app.state, "demo_accounts", [])

        async def announce() -> None:
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.1)
            print(_banner(accounts, port), flush=True)

        task = asyncio.create_task(announce())
        await server.serve()
        task.cancel()
    await transport.stop()


def allinone(args: argparse.Namespace) -> int:
    os.environ.setdefault("ENVIRONMENT", "development")
    os.environ["BUS_TRANSPORT"] = "inprocess"
    embedded = None
    if not (os.environ.get("POSTGRES_URL") or os.environ.get("IDENTITY_DATABASE_URL")):
        embedded = EmbeddedPostgres(Path(args.data_dir) / "pg")
        os.environ["POSTGRES_URL"] = embedded.url
        print(f"embedded PostgreSQL running, data in {Path(args.data_dir) / 'pg'}", flush=True)
    os.environ.setdefault("IDENTITY_STORAGE_URL", str(Path(args.data_dir) / "files"))
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it with the handler it found:
    # make that handler an exit, so the embedded server below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(_allinone(args.port))
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def up(args: argparse.Namespace) -> int:
    """Every service as its own process (uvicorn), then the gateway; Ctrl-C stops them all."""
    env = dict(os.environ)
    env.setdefault("ENVIRONMENT", "development")
    env.setdefault("IDENTITY_SEED_DEMO", "true" if env["ENVIRONMENT"] == "development" else "false")
    env.setdefault("IDENTITY_STORAGE_URL", str(Path(args.data_dir) / "files"))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, factory: str, port: int) -> subprocess.Popen[bytes]:
        cmd = uvicorn_command(factory, port, args.host)
        proc = subprocess.Popen(cmd, env=env)
        procs.append((name, proc))
        return proc

    def stop_all(*_: object) -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
    try:
        for name, (factory, port) in SERVICES.items():
            env[f"GATEWAY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
            proc = spawn(name, factory, port)
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        gateway = spawn("gateway", "gateway.main:create_app", args.port)
        wait_ready(f"http://127.0.0.1:{args.port}/readyz", gateway)
        if env["ENVIRONMENT"] == "development":
            from identity.seed import ADMIN, DEMO_ORGS, DEMO_PASSWORD, DemoAccount

            accounts = [DemoAccount(ADMIN[0], ADMIN[1], ADMIN[2], "administrator", None)] + [
                DemoAccount(o[0], o[1], DEMO_PASSWORD, "owner", o[2]) for o in DEMO_ORGS
            ]
            print(_banner(accounts, args.port), flush=True)
        while all(proc.poll() is None for _n, proc in procs):
            time.sleep(0.5)
        dead = [n for n, p in procs if p.poll() is not None]
        print(f"stopped: {', '.join(dead)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"not started: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-gateway", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("allinone", "up"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")))
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args(argv)
    return allinone(args) if args.command == "allinone" else up(args)


if __name__ == "__main__":
    raise SystemExit(main())
