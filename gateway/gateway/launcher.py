"""Starting the platform: all-in-one (one process, embedded PostgreSQL, in-process bus) or
distributed (every service its own process, on the configured PostgreSQL and RabbitMQ).

    python -m gateway.launcher allinone   # make run on a bare machine
    python -m gateway.launcher up         # make up: every service of the registry, then the gateway
    voucher-gateway migrate               # the gateway's own database (rate limits) to head

Which services there are, their ports and their app factories come from the service registry
(``common.registry``). ``ENVIRONMENT`` unset means production, as everywhere: only ``make``
sets ``development`` (demo data, console SMS, simulated checks, the /dev helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp

from common import demo, registry
from common.app import ServiceRuntime
from common.auth import KeySet
from common.bus.inprocess import InProcessTransport
from common.embedded import EmbeddedPostgres
from common.migrate_command import add_migrate_command, run_migrate_command
from common.processes import GRACEFUL_SHUTDOWN_SECONDS, uvicorn_command, wait_ready
from common.serving import HTTP_PROTOCOL


def _factory(path: str) -> Callable[..., FastAPI]:
    module, _, name = path.partition(":")
    factory: Callable[..., FastAPI] = getattr(importlib.import_module(module), name)
    return factory


def _docs_open(env: Mapping[str, str]) -> bool:
    """Whether the gateway serves /docs: in development, or with PUBLIC_DOCS=true
    (``ServiceSettings.guarded_paths`` closes them otherwise)."""
    if env.get("ENVIRONMENT") == "development":
        return True
    try:
        return TypeAdapter(bool).validate_python(env.get("PUBLIC_DOCS") or False)
    except ValidationError:
        return False


def _banner(port: int, host: str, development: bool, *, docs: bool | None = None) -> str:
    """What the operator reads at start; it links only what answers (/docs is closed in
    production unless PUBLIC_DOCS=true)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    docs = development if docs is None else docs
    api = f"API base: http://{shown}:{port}/api/v1"
    lines = [
        "",
        "=" * 72,
        f"  门户 (portal): http://{shown}:{port}/     管理端 (staff): http://{shown}:{port}/admin",
        f"  广西制造业企业培优育强服务券管理平台 is running: http://{shown}:{port}",
        f"  API docs:  http://{shown}:{port}/docs     {api}" if docs else f"  {api}",
        f"  services:  {', '.join(registry.NAMES)}",
    ]
    if development:
        lines += [
            "",
            "  Demo accounts (登录 → 账号密码登录 on the portal; the API: POST /api/v1/auth/login):",
        ]
        lines.append(f"    {demo.ADMIN[0]:<12} phone {demo.ADMIN[1]}  password {demo.ADMIN[2]}")
        for org in demo.ORGS:
            lines.append(f"    {org.label:<12} phone {org.phone}  password {demo.DEMO_PASSWORD}  {org.name}")
        lines += [
            "",
            "  Development helpers: GET /api/v1/captcha, then GET /api/v1/dev/captcha/{captcha_id}",
            "  gives its answer; GET /api/v1/dev/sms-codes/latest?phone=... the last SMS code.",
        ]
    lines += ["=" * 72, ""]
    return "\n".join(lines)


def _development() -> bool:
    return os.environ.get("ENVIRONMENT") == "development"


def _seed_env(env: dict[str, str] | os._Environ[str]) -> None:
    """Demo data in every service, in development only (a production refusal otherwise)."""
    if env.get("ENVIRONMENT") == "development":
        for svc in registry.SERVICES:
            env.setdefault(f"{svc.env_prefix}SEED_DEMO", "true")


async def _allinone(host: str, port: int) -> None:
    from gateway.config import Settings as GatewaySettings
    from gateway.inprocess import ASGIStreamTransport
    from gateway.main import create_app as create_gateway
    from gateway.proxy import HttpxForwarder, Upstreams, in_process_client
    from web.config import Settings as WebSettings

    transport = InProcessTransport()
    keys = KeySet()
    peers: dict[str, Any] = {}  # filled as the apps are made; each service reads it late
    apps: dict[str, FastAPI] = {}
    for svc in registry.SERVICES:
        apps[svc.name] = _factory(svc.app)(transport=transport, key_set=keys, peers=peers)
        peers[svc.name] = apps[svc.name]
    runtimes: list[ServiceRuntime] = [app.state.runtime for app in apps.values()]
    transport.retry_delays = runtimes[0].settings.bus_retry_delays
    await transport.start()
    begun: list[ServiceRuntime] = []
    try:
        # Mounting an app does not run its lifespan: start every runtime here, in two phases,
        # so every consumer is subscribed before any start hook or relay publishes.
        for runtime in runtimes:
            await runtime.prepare()
        for runtime in runtimes:
            begun.append(runtime)
            await runtime.begin()
        # The portal calls the gateway's API in-process and the gateway forwards every page
        # to it in-process: each reads the other late, through ``late``.
        late: dict[str, Any] = {}

        async def gateway_asgi(scope: Any, receive: Any, send: Any) -> None:
            await late["gateway"](scope, receive, send)

        portal_app = _factory(registry.PORTAL.app)(
            WebSettings(trusted_proxy_hops=1), api_transport=ASGIStreamTransport(gateway_asgi)
        )
        portal = HttpxForwarder(in_process_client(portal_app, "web"), stream_idle_timeout=60.0)
        gateway_app = create_gateway(
            GatewaySettings(port=port),
            upstreams=Upstreams.in_process(cast("dict[str, ASGIApp]", apps)),
            key_set=keys,
            portal=portal,
        )
        late["gateway"] = gateway_app
        server = uvicorn.Server(
            uvicorn.Config(
                gateway_app,
                host=host,
                port=port,
                log_config=None,
                proxy_headers=False,
                server_header=False,
                http=HTTP_PROTOCOL,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )

        async def announce() -> None:
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.1)
            print(_banner(port, host, _development(), docs=_docs_open(os.environ)), flush=True)

        task = asyncio.create_task(announce())
        await server.serve()
        task.cancel()
    finally:
        for runtime in reversed(runtimes):
            if runtime in begun or runtime.prepared:
                with suppress(Exception):
                    await runtime.stop()
        await transport.stop()


def allinone(args: argparse.Namespace) -> int:
    os.environ["BUS_TRANSPORT"] = "inprocess"
    _seed_env(os.environ)
    embedded = None
    if not (os.environ.get("POSTGRES_URL") or any(k.endswith("_DATABASE_URL") for k in os.environ)):
        embedded = EmbeddedPostgres(Path(args.data_dir) / "pg")
        os.environ["POSTGRES_URL"] = embedded.url
        print(f"embedded PostgreSQL running, data in {Path(args.data_dir) / 'pg'}", flush=True)
    os.environ.setdefault("IDENTITY_STORAGE_URL", str(Path(args.data_dir) / "files"))
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it with the handler it found:
    # make that handler an exit, so the embedded server below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(_allinone(args.host, args.port))
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def up(args: argparse.Namespace) -> int:
    """Every service as its own process (uvicorn), then the gateway; Ctrl-C stops them all."""
    env = dict(os.environ)
    _seed_env(env)
    env.setdefault("IDENTITY_STORAGE_URL", str(Path(args.data_dir) / "files"))
    urls = {svc.name: f"http://127.0.0.1:{svc.port}" for svc in registry.SERVICES}
    env.setdefault("SERVICE_URLS", __import__("json").dumps(urls))
    for name, url in urls.items():
        env.setdefault(f"GATEWAY_{name.upper()}_URL", url)
    portal = registry.PORTAL
    env.setdefault("GATEWAY_WEB_URL", f"http://127.0.0.1:{portal.port}")
    env.setdefault("WEB_API_URL", f"http://127.0.0.1:{args.port}")
    env.setdefault("WEB_TRUSTED_PROXY_HOPS", "1")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, factory: str, port: int, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(uvicorn_command(factory, port, host), env=env)
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

    def terminated(*_: object) -> None:
        stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminated)
    try:
        # Start them all, then wait: each declares the whole RabbitMQ topology at start, so
        # no event published by an early service is lost while a later one boots.
        started = [(svc, spawn(svc.name, svc.app, svc.port)) for svc in (*registry.SERVICES, portal)]
        for svc, proc in started:
            wait_ready(f"http://127.0.0.1:{svc.port}/readyz", proc)
        gateway = spawn("gateway", "gateway.main:create_app", args.port, args.host)
        wait_ready(f"http://127.0.0.1:{args.port}/readyz", gateway)
        development = env.get("ENVIRONMENT") == "development"
        print(_banner(args.port, args.host, development, docs=_docs_open(env)), flush=True)
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
        p.add_argument("--host", default="127.0.0.1", help="the gateway's address (default 127.0.0.1)")
        p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "data"))
    add_migrate_command(sub)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from gateway.main import MIGRATIONS

        return run_migrate_command("gateway", MIGRATIONS, args)
    return allinone(args) if args.command == "allinone" else up(args)


if __name__ == "__main__":
    raise SystemExit(main())
