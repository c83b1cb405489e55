"""The merged OpenAPI document: component schemas of the same name but different shape in
two services must not be folded into one (a client generated from it would get the wrong
model), and every schema reference in the merged document must resolve."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import httpx

from common import registry
from common.errors import database_busy
from common.openapi import add_problem
from gateway import errors
from gateway.compose import Composer, merge_openapi, through_gateway
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway

REF = "#/components/schemas/"


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
    mapping = (
        node.get("discriminator", {}).get("mapping", {})
        if isinstance(node.get("discriminator"), dict)
        else {}
    )
    found |= set(mapping.values())
    return found.union(*(_refs(v) for v in node.values()))


def _inline(node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every schema reference replaced by what it points at (names drop out, so
    two documents can be compared by shape)."""
    if isinstance(node, list):
        return [_inline(v, schemas, seen) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF):
        name = ref[len(REF) :]
        if name in seen:
            return {"$cycle": True}
        return _inline(schemas[name], schemas, (*seen, name))
    return {k: _inline(v, schemas, seen) for k, v in node.items() if k != "title"}


def _doc(path: str, schemas: dict[str, Any], body: str, answer: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "svc", "version": "1"},
        "paths": {
            path: {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": REF + body}}}},
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": REF + answer}}}}
                    },
                }
            },
            "/internal/stats": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": schemas},
    }


SHARED = {"type": "object", "properties": {"detail": {"type": "string"}}, "title": "Problem"}


def _two_services() -> dict[str, dict[str, Any]]:
    catalog = _doc(
        "/api/v1/products/{id}/decision",
        {
            "DecisionIn": {
                "type": "object",
                "properties": {"approve": {"type": "boolean"}},
                "required": ["approve"],
                "title": "DecisionIn",
            },
            # Same name, same shape in both: shared. Outer differs only through DecisionIn.
            "Problem": SHARED,
            "Outer": {"type": "object", "properties": {"d": {"$ref": REF + "DecisionIn"}}, "title": "Outer"},
        },
        "DecisionIn",
        "Outer",
    )
    payments = _doc(
        "/api/v1/remittances/{id}/decision",
        {
            "DecisionIn": {
                "type": "object",
                "properties": {"outcome": {"type": "string", "enum": ["paid", "refused"]}},
                "required": ["outcome"],
                "title": "DecisionIn",
            },
            "Problem": SHARED,
            "Outer": {"type": "object", "properties": {"d": {"$ref": REF + "DecisionIn"}}, "title": "Outer"},
        },
        "DecisionIn",
        "Outer",
    )
    return {"catalog": catalog, "payments": payments}


def _own() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "gw", "version": "1"}, "paths": {}}


def _assert_each_path_keeps_its_shape(merged: dict[str, Any], docs: dict[str, dict[str, Any]]) -> None:
    owner = {path: name for name, doc in docs.items() for path in doc.get("paths", {})}
    schemas = merged["components"]["schemas"]
    for name, doc in docs.items():
        for path, item in doc["paths"].items():
            if not path.startswith("/api/v1/") or owner[path] != name:
                continue
            theirs = doc.get("components", {}).get("schemas", {})
            got = {m: op for m, op in merged["paths"][path].items()}
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                mine = {k: v for k, v in got[method].items() if k != "tags"}
                # What the gateway adds (its own problems) is checked apart, below.
                want = {k: v for k, v in through_gateway(operation).items() if k != "tags"}
                assert _inline(mine, schemas) == _inline(want, theirs), (name, method, path)


def test_clashing_schema_names_keep_each_services_own_shape() -> None:
    docs = _two_services()
    for doc in docs.values():  # each already documents a 503 of its own, as every real one does
        for item in doc["paths"].values():
            for operation in item.values():
                add_problem(operation.setdefault("responses", {}), database_busy(), "503")
    before = json.dumps(docs, sort_keys=True)
    merged = merge_openapi(_own(), docs)
    schemas = merged["components"]["schemas"]

    catalog_op = merged["paths"]["/api/v1/products/{id}/decision"]["post"]
    payments_op = merged["paths"]["/api/v1/remittances/{id}/decision"]["post"]
    body = ("requestBody", "content", "application/json", "schema", "$ref")

    def at(op: dict[str, Any], keys: tuple[str, ...]) -> Any:
        for key in keys:
            op = op[key]
        return op

    # The first keeps the name; the later, different one is renamed with its service's name.
    assert at(catalog_op, body) == REF + "DecisionIn"
    assert at(payments_op, body) == REF + "payments__DecisionIn"
    assert schemas["DecisionIn"]["properties"] == {"approve": {"type": "boolean"}}
    assert "outcome" in schemas["payments__DecisionIn"]["properties"]
    # Outer is textually the same in both but means a different thing: renamed too, and its
    # inner reference rewritten.
    answer = ("responses", "200", "content", "application/json", "schema", "$ref")
    assert at(payments_op, answer) == REF + "payments__Outer"
    assert schemas["payments__Outer"]["properties"]["d"]["$ref"] == REF + "payments__DecisionIn"
    assert schemas["Outer"]["properties"]["d"]["$ref"] == REF + "DecisionIn"
    # Identical definitions are shared under one name.
    assert schemas["Problem"] == SHARED and "payments__Problem" not in schemas
    assert catalog_op["tags"] == ["catalog"] and payments_op["tags"] == ["payments"]
    assert "/internal/stats" not in merged["paths"]

    _assert_each_path_keeps_its_shape(merged, docs)
    assert {r[len(REF) :] for r in _refs(merged)} <= set(schemas)
    assert json.dumps(docs, sort_keys=True) == before  # the services' documents are untouched


def test_a_clash_with_the_gateways_own_schema_renames_the_service_one() -> None:
    own = {**_own(), "components": {"schemas": {"DecisionIn": {"type": "string", "title": "DecisionIn"}}}}
    docs = _two_services()
    merged = merge_openapi(own, docs)
    schemas = merged["components"]["schemas"]
    assert schemas["DecisionIn"] == {"type": "string", "title": "DecisionIn"}
    assert {"catalog__DecisionIn", "payments__DecisionIn"} <= set(schemas)
    _assert_each_path_keeps_its_shape(merged, docs)
    assert {r[len(REF) :] for r in _refs(merged)} <= set(schemas)


async def test_composer_caches_only_once_every_service_answered() -> None:
    docs = _two_services()
    down = {"payments": True}

    def handler(service: str) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            if down.get(service):
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(200, json=docs[service])

        return answer

    clients = {
        name: httpx.AsyncClient(transport=httpx.MockTransport(handler(name)), base_url=f"http://{name}")
        for name in docs
    }
    composer = Composer(clients, "s" * 40)
    partial = await composer.openapi(_own())
    assert "/api/v1/products/{id}/decision" in partial["paths"]
    assert "/api/v1/remittances/{id}/decision" not in partial["paths"]
    down["payments"] = False
    full = await composer.openapi(_own())
    assert full["paths"]["/api/v1/remittances/{id}/decision"]["post"]["tags"] == ["payments"]
    assert "payments__DecisionIn" in full["components"]["schemas"]
    down["payments"] = True
    assert await composer.openapi(_own()) is full  # cached
    for client in clients.values():
        await client.aclose()


def _real_documents() -> dict[str, dict[str, Any]]:
    """Every service's own document, from its app (building an app starts nothing)."""
    docs = {}
    for svc in registry.SERVICES:
        settings = importlib.import_module(f"{svc.package}.config").Settings(environment="development")
        module, _, factory = svc.app.partition(":")
        docs[svc.name] = getattr(importlib.import_module(module), factory)(settings).openapi()
    return docs


def test_the_real_merged_document_has_no_dangling_refs_and_keeps_every_shape() -> None:
    docs = _real_documents()
    own = create_gateway(GatewaySettings(environment="development")).openapi()
    merged = merge_openapi(own, docs)
    schemas = merged["components"]["schemas"]
    dangling = {r for r in _refs(merged) if not r.startswith(REF) or r[len(REF) :] not in schemas}
    assert not dangling, sorted(dangling)
    _assert_each_path_keeps_its_shape(merged, docs)


def test_every_routed_operation_documents_what_the_gateway_itself_answers() -> None:
    """A client generated from the merged document must know the 429 and the 502/503/504 the
    gateway answers in front of any service."""
    merged = merge_openapi(_own(), _two_services())
    operation = merged["paths"]["/api/v1/remittances/{id}/decision"]["post"]
    for problem in errors.ROUTED:
        documented = operation["responses"][str(problem.status)]["content"]["application/problem+json"]
        assert documented["schema"] == {"$ref": REF + "Problem"}
        assert documented["examples"][problem.code]["value"]["code"] == problem.code
    assert operation["responses"]["429"]["description"] == "请求过于频繁（code：rate_limited）"


def test_merging_leaves_each_services_document_as_it_was() -> None:
    """A service's document is its app's cached ``openapi()``: the gateway's 429/502/503/504 go
    into the merged copy only (identity's own /openapi.json never says ``upstream_timeout``)."""
    docs = _two_services()
    for doc in docs.values():  # each already documents a 503 of its own, as every real one does
        for item in doc["paths"].values():
            for operation in item.values():
                add_problem(operation.setdefault("responses", {}), database_busy(), "503")
    before = json.dumps(docs, sort_keys=True)
    merge_openapi(_own(), docs)
    assert json.dumps(docs, sort_keys=True) == before
