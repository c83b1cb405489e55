"""Problems (RFC 9457), the request-id middleware and the body-size limit on a tiny app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from common.errors import Problem, install_error_handlers
from common.http import BodySizeLimitMiddleware, RequestContextMiddleware, client_ip


class Body(BaseModel):
    name: str = Field(min_length=2, max_length=5)
    count: int = Field(ge=1)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "uscc_taken", "该统一社会信用代码已被认证", org="x")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_middleware(BodySizeLimitMiddleware, limit=1024, overrides={"/upload": 4096})
    app.add_middleware(RequestContextMiddleware, service="test")
    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_a_problem_is_rfc9457_with_a_stable_code(client: httpx.AsyncClient) -> None:
    r = await client.get("/conflict", headers={"X-Request-ID": "abc-1"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/uscc_taken")
    assert body["code"] == "uscc_taken" and body["status"] == 409
    assert body["title"] == "状态冲突" and body["detail"] == "该统一社会信用代码已被认证"
    assert body["instance"] == "/conflict" and body["request_id"] == "abc-1" and body["org"] == "x"
    assert r.headers["x-request-id"] == "abc-1"


async def test_validation_errors_name_each_field_in_chinese(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"name": "a", "count": 0})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields == {"name": "长度不能少于 2 个字符", "count": "应不小于 1"}
    assert "共 2 处错误" in body["detail"]


async def test_wrong_types_and_missing_fields(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"count": "many"})
    fields = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert fields == {"name": "不能为空", "count": "应为整数"}
    r = await client.post("/things", json=["not", "an", "object"])
    assert r.status_code == 422


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"


async def test_unexpected_errors_are_a_500_without_internals(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.delete("/things")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


async def test_bodies_over_the_limit_are_413_by_length_and_by_stream(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", content=b"x" * 2000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 500

    r = await client.post("/things", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_request_ids_are_made_when_absent_or_unsafe(client: httpx.AsyncClient) -> None:
    made = (await client.get("/conflict")).headers["x-request-id"]
    assert len(made) == 36
    unsafe = (await client.get("/conflict", headers={"X-Request-ID": "a b\nc"})).headers["x-request-id"]
    assert unsafe != "a b\nc" and len(unsafe) == 36


def test_client_ip_trusts_forwarded_for_only_behind_proxies() -> None:
    scope = {"client": ("10.0.0.2", 1), "headers": [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.1")]}
    assert client_ip(scope, 0) == "10.0.0.2"
    assert client_ip(scope, 1) == "10.0.0.1"
    assert client_ip(scope, 2) == "203.0.113.9"


async def test_nul_characters_are_refused_before_the_handler() -> None:
    from common.sanitize import RejectNulMiddleware

    reached: list[str] = []
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things/{thing_id}")
    async def things(thing_id: str, body: Body, q: str = "") -> dict[str, str]:
        reached.append(thing_id)
        return {"name": body.name}

    app.add_middleware(RejectNulMiddleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.post("/things/a", json={"name": "abc", "count": 1})
        assert ok.status_code == 200
        r = await c.post("/things/a%00b", json={"name": "abc", "count": 1})
        assert r.status_code == 404
        r = await c.post("/things/a", params={"q": "x\x00y"}, json={"name": "abc", "count": 1})
        assert r.status_code == 422 and r.json()["code"] == "invalid_characters"
        r = await c.post(
            "/things/a",
            content=b'{"name": "a\\u0000b", "count": 1}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_characters"
    assert reached == ["a"]
