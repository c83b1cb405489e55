"""The gateway's composed reads (/portal/stats, /admin/audit-log) parse every service's
answer as its contract (common.reads.PortalStats, AuditFeed): the figures the registry names
and the staff decisions newest first, on the wire as the services wrote them. A service
answering off the contract is one that cannot answer now (the read's 503
dependency_unavailable), which the composed views show as they show a service out of reach:
its last known figures (or null) and its name in ``stale``, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from common.errors import Problem
from common.reads import AuditFeed, AuditRecord, PortalStats
from common.testing.tokens import TestIssuer
from gateway.compose import Composer
from gateway.main import create_app
from gateway.proxy import Upstreams

from .conftest import gateway_settings

EVERY_FIGURE = {
    "enterprises",
    "providers",
    "enterprises_with_quota",
    "quota_total_fen",
    "pending_budget_fen",
    "deducted_fen",
    "products",
    "signed_contracts",
    "settled_fen",
    "published_demands",
}


def entry(service: str, at: datetime, action: str, **details: Any) -> AuditRecord:
    return AuditRecord(
        id=1,
        service=service,
        at=at,
        actor_id="staff-1",
        actor_role="reviewer",
        action=action,
        target_type="thing",
        target_id="t-1",
        reason="经核实",
        details=details,
    )


class FakeService:
    """A service's two reads for the gateway, answered through their contracts (the
    producers' response_model); ``answer`` replaces one with anything at all."""

    def __init__(self, figures: dict[str, int], feed: list[AuditRecord] | None = None) -> None:
        self.figures = PortalStats(figures)
        self.feed = AuditFeed(items=feed or [])
        self.raw: dict[str, Any] = {}  # path -> an off-contract answer
        self.app = FastAPI()

        @self.app.get("/internal/stats", response_model=PortalStats)
        async def stats(request: Request) -> Any:
            return self.raw.get("/internal/stats", self.figures)

        @self.app.get("/internal/audit-log", response_model=AuditFeed)
        async def audit_log(request: Request, limit: int = 100) -> Any:
            if "/internal/audit-log" in self.raw:
                return self.raw["/internal/audit-log"]
            return AuditFeed(items=self.feed.items[:limit])

        @self.app.middleware("http")
        async def service_token_only(request: Request, call_next: Any) -> Any:
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"code": "service_token_required"}, status_code=401)
            return await call_next(request)

    def answer(self, path: str, raw: Any) -> None:
        # A Response passes as it is; anything else is sent as JSON without its model.
        self.raw[path] = raw if isinstance(raw, Response) else JSONResponse(raw)


Gateway = tuple[FastAPI, httpx.AsyncClient, dict[str, str]]


@pytest_asyncio.fixture
async def gateway(
    fresh_db: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Callable[[dict[str, ASGIApp]], Awaitable[Gateway]]]:
    """A gateway before the given fake services (no identity: nobody's token to confirm),
    figures never cached, and a staff member's headers."""
    opened: list[Any] = []

    async def make(upstreams: dict[str, ASGIApp]) -> Gateway:
        issuer = TestIssuer()
        app = create_app(
            gateway_settings(await fresh_db("gateway"), stats_cache_seconds=0),
            upstreams=Upstreams.in_process(upstreams),
            key_set=issuer.keys,
        )
        cm = app.router.lifespan_context(app)
        await cm.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        opened.append((cm, client))
        return app, client, issuer.caller(role="administrator").headers

    yield make
    for cm, client in reversed(opened):
        await client.aclose()
        await cm.__aexit__(None, None, None)


async def test_the_portal_shows_the_figures_each_services_row_names(gateway: Any) -> None:
    catalog = FakeService({"products": 12, "a_newer_figure": 3})  # a newer catalog's extra
    quota = FakeService({"enterprises_with_quota": 5, "quota_total_fen": 5_000_000})  # an older one
    _app, client, _staff = await gateway({"catalog": catalog.app, "quota": quota.app})
    body = (await client.get("/api/v1/portal/stats")).json()
    assert set(body) == EVERY_FIGURE | {"stale"}
    assert (body["products"], body["enterprises_with_quota"], body["quota_total_fen"]) == (12, 5, 5_000_000)
    assert body["pending_budget_fen"] is None and body["deducted_fen"] is None  # not answered yet
    assert sorted(body["stale"]) == ["contracts", "demands", "identity", "payments"]  # not there


async def test_the_composed_audit_log_is_every_services_decisions_newest_first_as_they_wrote_them(
    gateway: Any,
) -> None:
    noon = datetime(2024, 9, 13, 4, 0, tzinfo=UTC)
    catalog = FakeService(
        {"products": 0},
        [
            entry("catalog", noon + timedelta(seconds=1), "product.approve", product_no="P1"),
            # half a second after noon UTC, in business time: as text "12:00:00.500000+08:00"
            # sorts before every "04:00:0xZ" (the newest); as a moment it is the third
            entry(
                "catalog", (noon + timedelta(milliseconds=500)).astimezone(timezone(timedelta(hours=8))), "x"
            ),
        ],
    )
    quota = FakeService(
        {},
        [
            entry("quota", noon + timedelta(seconds=2), "quota_application.approve", amounts=[1, 2]),
            entry("quota", noon, "campaign.update"),
        ],
    )
    _app, client, staff = await gateway({"catalog": catalog.app, "quota": quota.app})
    r = await client.get("/api/v1/admin/audit-log", headers=staff)
    assert r.status_code == 200, r.text
    body = r.json()
    wrote = {e.action: e.model_dump(mode="json") for e in [*catalog.feed.items, *quota.feed.items]}
    assert body["items"] == [
        wrote[action] for action in ("quota_application.approve", "product.approve", "x", "campaign.update")
    ]
    assert (body["total"], body["stale"]) == (4, [])
    only = (await client.get("/api/v1/admin/audit-log", headers=staff, params={"service": "quota"})).json()
    assert [e["service"] for e in only["items"]] == ["quota", "quota"]


NOT_JSON = Response(b"<html>502 Bad Gateway</html>", media_type="text/html")


@pytest.mark.parametrize(
    "answer",
    [{"products": "许多"}, ["products", 12], {"products": 1.5}, NOT_JSON],
    ids=["not-a-number", "not-an-object", "not-an-integer", "not-json"],
)
async def test_figures_off_the_contract_keep_the_last_known_and_mark_the_service_stale(
    gateway: Any, answer: Any
) -> None:
    catalog, demands = FakeService({"products": 12}), FakeService({"published_demands": 4})
    app, client, _staff = await gateway({"catalog": catalog.app, "demands": demands.app})
    assert (await client.get("/api/v1/portal/stats")).json()["products"] == 12
    catalog.answer("/internal/stats", answer)

    r = await client.get("/api/v1/portal/stats")
    assert r.status_code == 200, r.text
    assert (r.json()["products"], r.json()["published_demands"]) == (12, 4)
    assert "catalog" in r.json()["stale"] and "demands" not in r.json()["stale"]
    # the read itself: the peer cannot answer now, the usual problem of a read between processes
    composer: Composer = app.state.composer
    with pytest.raises(Problem) as refused:
        await composer.reads.read("catalog", "/internal/stats", PortalStats)
    assert (refused.value.status, refused.value.code) == (503, "dependency_unavailable")


@pytest.mark.parametrize(
    "answer",
    [
        {"items": [{"action": "product.approve"}]},  # an entry without its who and when
        {
            "items": [
                {
                    **entry("catalog", datetime(2024, 9, 13, tzinfo=UTC), "x").model_dump(mode="json"),
                    "at": "昨天",
                }
            ]
        },
        {"items": "none"},
        NOT_JSON,
    ],
    ids=["missing-fields", "not-a-moment", "not-a-list", "not-json"],
)
async def test_an_audit_feed_off_the_contract_is_that_service_stale_not_a_500(
    gateway: Any, answer: Any
) -> None:
    at = datetime(2024, 9, 13, 4, 0, tzinfo=UTC)
    catalog, quota = FakeService({}), FakeService({}, [entry("quota", at, "campaign.update")])
    catalog.answer("/internal/audit-log", answer)
    app, client, staff = await gateway({"catalog": catalog.app, "quota": quota.app})

    r = await client.get("/api/v1/admin/audit-log", headers=staff)
    assert r.status_code == 200, r.text
    assert [e["action"] for e in r.json()["items"]] == ["campaign.update"]
    assert r.json()["stale"] == ["catalog"]
    composer: Composer = app.state.composer
    with pytest.raises(Problem) as refused:
        await composer.reads.read("catalog", "/internal/audit-log", AuditFeed)
    assert (refused.value.status, refused.value.code) == (503, "dependency_unavailable")
