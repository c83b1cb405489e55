"""The API description client teams generate their code from (issue 15): in every service's
document, the gateway's own and the merged one (the gateway's ``/openapi.json``), every public
operation has a Chinese summary, description and 2xx description, and documents its errors as
RFC 9457 problems (``application/problem+json``, schema ``Problem``) with codes the service
really has, never FastAPI's ``HTTPValidationError``.

That a route documents every code it *answers* is proven by the test plugin
(``common.testing.problem_docs``) while the services' own tests run."""

from __future__ import annotations

import importlib
import json
import re
from functools import cache
from typing import Any

import pytest

from common import registry
from common.errors import PROBLEM_JSON
from gateway.compose import merge_openapi
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway

from .problem_codes import all_modules, codes, service_modules

HAN = re.compile(r"[\u4e00-\u9fff]")
METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM_REF = "#/components/schemas/Problem"

DOCUMENTS = [*(s.name for s in registry.SERVICES), "gateway", "merged"]


@cache
def _service_document(name: str) -> dict[str, Any]:
    """``name``'s own document, from its app built in development (building starts nothing)."""
    svc = registry.BY_NAME[name]
    settings = importlib.import_module(f"{svc.package}.config").Settings(environment="development")
    module, _, factory = svc.app.partition(":")
    doc: dict[str, Any] = getattr(importlib.import_module(module), factory)(settings).openapi()
    return doc


@cache
def _gateway_document() -> dict[str, Any]:
    doc: dict[str, Any] = create_gateway(GatewaySettings(environment="development")).openapi()
    return doc


def document(name: str) -> dict[str, Any]:
    if name == "gateway":
        return _gateway_document()
    if name == "merged":
        docs = {s.name: _service_document(s.name) for s in registry.SERVICES}
        return merge_openapi(_gateway_document(), docs)
    return _service_document(name)


@cache
def known_codes(name: str) -> frozenset[tuple[int, str]]:
    if name == "merged":
        modules = {*all_modules(), *service_modules("gateway")}
    else:
        modules = set(service_modules(name))
    return frozenset(codes(modules))


def operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(``METHOD path``, operation) for every public operation (never ``/internal/``)."""
    return [
        (f"{method.upper()} {path}", op)
        for path, item in doc["paths"].items()
        if not path.startswith("/internal/")
        for method, op in item.items()
        if method in METHODS
    ]


def _chinese(text: object) -> bool:
    return isinstance(text, str) and bool(HAN.search(text))


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_operation_has_a_chinese_summary_description_and_success_description(name: str) -> None:
    missing = []
    for label, op in operations(document(name)):
        if not _chinese(op.get("summary")):
            missing.append(f"{label}: summary {op.get('summary')!r}")
        if not _chinese(op.get("description")):
            missing.append(f"{label}: no Chinese description")
        for status, response in op.get("responses", {}).items():
            if status.startswith("2") and not _chinese(response.get("description")):
                missing.append(f"{label}: {status} described as {response.get('description')!r}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_error_is_documented_as_a_problem_with_codes_the_service_has(name: str) -> None:
    doc = document(name)
    assert "Problem" in doc["components"]["schemas"]
    known = known_codes(name)
    wrong = []
    for label, op in operations(doc):
        errors = {s: r for s, r in op.get("responses", {}).items() if s[0] in "45"}
        if not errors:
            wrong.append(f"{label}: documents no error at all")
        for status, response in errors.items():
            content = response.get("content", {})
            if set(content) != {PROBLEM_JSON}:
                wrong.append(f"{label}: {status} as {sorted(content)}, not only {PROBLEM_JSON}")
                continue
            media = content[PROBLEM_JSON]
            if media.get("schema") != {"$ref": PROBLEM_REF}:
                wrong.append(f"{label}: {status} schema {media.get('schema')}")
            examples = media.get("examples", {})
            if not examples:
                wrong.append(f"{label}: {status} names no code")
            for code, example in examples.items():
                if example["value"]["code"] != code or example["value"]["status"] != int(status):
                    wrong.append(f"{label}: {status} example {code} shows {example['value']}")
                if (int(status), code) not in known:
                    wrong.append(f"{label}: {status} {code} is no problem {name} has (errors.py)")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_fastapi_validation_error_schema_remains(name: str) -> None:
    text = json.dumps(document(name))
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text


def test_every_operation_a_client_calls_documents_the_gateways_rate_limit() -> None:
    """Every request passes the gateway's limits (its own routes too): a generated client must
    know the 429 and its code."""
    missing = [
        where
        for where, op in operations(document("merged"))
        if "rate_limited"
        not in op["responses"].get("429", {}).get("content", {}).get(PROBLEM_JSON, {}).get("examples", {})
    ]
    assert not missing, missing


def test_operation_ids_are_unique_and_short_for_generated_clients() -> None:
    ids = [op["operationId"] for _, op in operations(document("merged"))]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 60 and "_api_v1_" not in i for i in ids), [i for i in ids if len(i) > 60]
