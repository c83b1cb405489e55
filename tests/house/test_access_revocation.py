"""A right taken away is refused by every service, on every route (issue 12 §4).

- Every public route of every service that takes a token takes it through
  ``common.auth.current_user`` (no route reads a token its own way), and answers a revoked
  token with 401 ``token_revoked`` before doing anything: checked on the real apps, built and
  not started, with a revocation put straight into each one's copy.
- Every service but identity hears ``identity.user_access_changed`` and refuses within seconds
  (its consumer, its database, its once-a-tick refresh), on RabbitMQ and in process: the
  user's earlier tokens (every session, or the sessions named), and not the tokens issued
  afterwards nor the user's other sessions.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from common import registry
from common.auth import current_user, optional_user
from common.events import UserAccessChanged
from common.testing.saga import SagaHarness
from common.testing.tokens import Caller, TestIssuer

from .test_dependencies import _api_routes

SERVICES = tuple(n for n in registry.NAMES if n != "identity")


# --- every route ---------------------------------------------------------------------------------


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _takes_a_token(route: APIRoute) -> bool:
    return any(call in (current_user, optional_user) for call in _calls(route.dependant))


def _public(path: str, method: str) -> bool:
    sub = path.removeprefix(registry.API_PREFIX)
    return any(
        (m == "*" or m == method) and registry.matches(pattern, sub) for m, pattern in registry.public_paths()
    )


def _app(name: str, issuer: TestIssuer) -> FastAPI:
    svc = registry.service(name)
    settings = importlib.import_module(f"{svc.package}.config").Settings(
        environment="development", database_url="postgresql://nobody@127.0.0.1:1/none"
    )
    return importlib.import_module(f"{svc.package}.main").create_app(settings, key_set=issuer.keys)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", registry.NAMES)
async def test_every_route_that_takes_a_token_refuses_a_revoked_one_first(name: str) -> None:
    issuer = TestIssuer()
    app = _app(name, issuer)
    staff = issuer.staff("administrator")
    member = issuer.member(caps=("enterprise", "provider"))
    app.state.runtime.revocations.apply(staff.user_id, "", time.time() + 1)
    app.state.runtime.revocations.apply(member.user_id, "", time.time() + 1)

    unchecked, answered, checked = [], [], 0
    routes = [r for r in _api_routes(app.routes) if r.path.startswith(registry.API_PREFIX + "/")]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is an answer here
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        for route in routes:
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                if not _takes_a_token(route):
                    if not _public(route.path, method) and not route.path.startswith("/api/v1/dev/"):
                        unchecked.append(f"{method} {route.path}")
                    continue
                checked += 1
                path = route.path
                for param in route.dependant.path_params:
                    path = path.replace("{" + param.name + "}", str(uuid.uuid4()))
                for who in (staff, member):
                    r = await client.request(
                        method,
                        path,
                        json={},
                        headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    if r.status_code != 401 or r.json().get("code") != "token_revoked":
                        answered.append(f"{method} {route.path} ({who.role}): {r.status_code} {r.text[:120]}")
    assert checked >= 3, f"{name}: only {checked} routes take a token?"
    assert unchecked == [], f"{name}: routes that need a token without common.auth.current_user"
    assert answered == [], f"{name}: routes that did not refuse a revoked token first"


@pytest.mark.parametrize("name", [n for n in registry.NAMES if n != "identity"])
def test_every_service_but_identity_consumes_the_revocations(name: str) -> None:
    """Identity records its own in the transaction of the change; every other service hears
    the event (its registry row binds its queue, its consumer applies it)."""
    app = _app(name, TestIssuer())
    assert set(registry.ACCESS_FACTS) <= set(registry.service(name).consumes)
    assert set(registry.ACCESS_FACTS) <= set(app.state.runtime.consumer.handlers)


# --- every service hears of it -------------------------------------------------------------------


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# A harmless read of each service, for a member and for staff.
READS: dict[str, tuple[str, str]] = {
    "quota": ("/api/v1/me/vouchers", "/api/v1/admin/vouchers"),
    "catalog": ("/api/v1/me/favorites", "/api/v1/admin/products"),
    "orders": ("/api/v1/me/orders", "/api/v1/admin/orders"),
    "contracts": ("/api/v1/me/seal", "/api/v1/admin/contracts"),
    "payments": ("/api/v1/remittances", "/api/v1/admin/settlements"),
    "demands": ("/api/v1/me/messages", "/api/v1/admin/messages"),
}


async def _status(h: SagaHarness, name: str, who: Caller, staff: bool) -> tuple[int, str]:
    r = await h.client(name).get(READS[name][1 if staff else 0], headers=who.headers)
    return r.status_code, r.json().get("code", "") if r.status_code >= 400 else ""


async def _everywhere(
    h: SagaHarness, who: Caller, staff: bool, ok: Callable[[int, str], bool], within: float = 10.0
) -> dict[str, tuple[int, str]]:
    """Poll every service until ``ok`` holds for ``who`` on each; returns the last answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        seen = {name: await _status(h, name, who, staff) for name in SERVICES}
        if all(ok(*answer) for answer in seen.values()):
            return seen
        if loop.time() > deadline:
            raise AssertionError(f"not within {within}s: {seen}")
        await asyncio.sleep(0.05)


def _revoked(status: int, code: str) -> bool:
    """A right taken away (403 access_revoked) or a session ended (401 token_revoked)."""
    return (status, code) in ((401, "token_revoked"), (403, "access_revoked"))


def _accepted(status: int, code: str) -> bool:
    return status != 401 and not _revoked(status, code)


async def test_every_service_refuses_a_revoked_user_within_seconds_and_not_the_next_token(
    saga: Callable[..., Awaitable[SagaHarness]],
) -> None:
    h = await saga(*SERVICES, pool_size=2)  # seven services beside the e2e platforms: few connections each
    issuer = h.issuer
    clerk_id = str(uuid.uuid4())
    clerk = issuer.staff("administrator", user_id=clerk_id)
    owner = issuer.member()
    other_device = issuer.caller(
        role="owner", org_id=owner.org_id, caps=("enterprise",), user_id=owner.user_id
    )
    ending = next(iter(_sid(owner)))
    await _everywhere(h, clerk, True, _accepted)
    await _everywhere(h, owner, False, _accepted)

    # The clerk is deactivated (every token before now); the owner logs out of one device.
    at = datetime.now(UTC)
    await h.publish(
        UserAccessChanged(user_id=clerk_id, org_id=None, change="deactivated", not_before=at),
        aggregate_id=clerk_id,
    )
    await h.publish(
        UserAccessChanged(
            user_id=owner.user_id,
            org_id=owner.org_id,
            change="sessions_revoked",
            not_before=at,
            session_ids=[ending],
        ),
        aggregate_id=owner.user_id,
        sequence=1,
    )
    await _everywhere(h, clerk, True, _revoked)
    await _everywhere(h, owner, False, _revoked)
    # The owner's other device, and a token issued after the change, go on everywhere.
    await _everywhere(h, other_device, False, _accepted)
    reinstated = issuer.staff("administrator", user_id=clerk_id)
    await _everywhere(h, reinstated, True, _accepted)
    # A redelivery of the old event changes nothing.
    await h.publish(
        UserAccessChanged(user_id=clerk_id, org_id=None, change="deactivated", not_before=at),
        aggregate_id=clerk_id,
    )
    await h.settle()
    await _everywhere(h, reinstated, True, _accepted)
    await _everywhere(h, clerk, True, _revoked)


def _sid(who: Caller) -> set[str]:
    import jwt

    return {str(jwt.decode(who.token, options={"verify_signature": False})["sid"])}
