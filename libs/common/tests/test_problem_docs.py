"""The problems a route answers are counted by code, and the test plugin names the ones its
app's OpenAPI document does not list."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from common import errors
from common.errors import Problem, install_error_handlers
from common.metrics import PROBLEMS
from common.openapi import install_problem_docs, problems
from common.testing.problem_docs import ProblemDocs


def thing_missing() -> Problem:
    return Problem(404, "thing_missing", "东西不存在")


def thing_busy() -> Problem:
    return Problem(409, "thing_busy", "东西正忙")


def probe_app(service: str = "demands") -> FastAPI:
    app = FastAPI()
    app.state.settings = SimpleNamespace(service_name=service)
    install_error_handlers(app)
    install_problem_docs(app)

    @app.get("/things/{thing_id}", summary="查看东西", responses=problems(thing_missing))
    async def thing(thing_id: str) -> dict[str, str]:
        raise thing_missing() if thing_id == "missing" else thing_busy()

    @app.get("/internal/things", include_in_schema=False)
    async def hidden() -> None:
        raise thing_busy()

    return app


@pytest.fixture
def checker(monkeypatch: pytest.MonkeyPatch) -> ProblemDocs:
    # Only this checker sees the probe app (the session's would report its deliberate gap).
    found = ProblemDocs()
    monkeypatch.setattr(errors, "PROBLEM_OBSERVERS", [found.observe])
    return found


async def test_an_answered_code_the_route_does_not_document_is_reported(checker: ProblemDocs) -> None:
    service = "demands"  # a service of the registry: apps a test makes up itself are not checked
    app = probe_app(service)
    before = PROBLEMS.labels(service, "GET", "/things/{thing_id}", "409", "thing_busy")._value.get()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/things/missing")).json()["code"] == "thing_missing"
        assert (await client.get("/things/other")).status_code == 409
        assert (await client.get("/things/x?thing_id=")).status_code == 409
        assert (await client.get("/internal/things")).status_code == 409

    counted = PROBLEMS.labels(service, "GET", "/things/{thing_id}", "409", "thing_busy")._value.get()
    assert counted - before == 2
    assert checker.undocumented() == [
        f"{service}: GET /things/{{thing_id}} answers 409 thing_busy, not in its OpenAPI responses"
    ]


async def test_an_app_a_test_makes_up_for_itself_is_not_checked(checker: ProblemDocs) -> None:
    app = probe_app("made-up")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/things/other")).status_code == 409
    assert checker.undocumented() == []
