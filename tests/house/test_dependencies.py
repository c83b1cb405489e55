"""House rules every service's routes keep, checked on the real apps (built, not started)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from common import registry
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway
from web.config import Settings as WebSettings
from web.main import create_app as create_portal


def _apps() -> Iterator[tuple[str, FastAPI]]:
    for svc in registry.SERVICES:
        settings = importlib.import_module(f"{svc.package}.config").Settings(environment="development")
        yield svc.name, importlib.import_module(f"{svc.package}.main").create_app(settings)
    yield "gateway", create_gateway(GatewaySettings(environment="development"))
    yield "web", create_portal(WebSettings(environment="development"))


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI 0.165 keeps those as routers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(inner.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    target = call if inspect.isroutine(call) else getattr(call, "__call__", call)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.parametrize(("name", "app"), list(_apps()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_route_and_dependency_is_async(name: str, app: FastAPI) -> None:
    """FastAPI runs a plain ``def`` route or dependency in a worker thread, on every request:
    a hand-off py-spy showed in catalog's listing for a dependency that only returned a
    value. Every one is ``async def`` (blocking work goes to ``asyncio.to_thread`` by name)."""
    sync = sorted(
        {
            f"{route.path} -> {getattr(call, '__qualname__', repr(call))}"
            for route in _api_routes(app.routes)
            for call in _calls(route.dependant)
            if not _is_async(call)
        }
    )
    assert not sync, f"{name}: synchronous routes or dependencies: {sync}"
    assert any(True for _ in _api_routes(app.routes)), "the walk found the routes"
