"""The API description client teams generate their code from.

Every error an operation can answer is documented as an RFC 9457 problem
(``application/problem+json``, schema ``Problem``) with the stable codes it can carry, one
example per code. A route names the problems of its own rules; the ones every route of a kind
can give (a bad parameter, no token, a staff-only route) are added here from the route's
parameters and dependencies, so no route repeats them:

    @router.post(
        "/orders/{order_id}/cancel",
        summary="取消订单",
        description="企业取消尚未付款的订单；已预留的服务券额度随之释放。",
        responses=problems(errors.order_not_found, errors.refused(SAMPLE_REFUSAL)),
    )

``problems`` takes the service's factories from ``errors.py`` (called without arguments) or
problems already built (for a factory that needs an argument), so a code and its text stay in
one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from common.errors import PROBLEM_JSON, Problem, database_busy

PROBLEM_REF = "#/components/schemas/Problem"
_DROPPED_SCHEMAS = ("HTTPValidationError", "ValidationError")


class FieldError(BaseModel):
    """One field at fault: a client shows ``message`` next to the input named ``field``."""

    field: str = Field(description="出错的字段（请求体内用点号连接，如 contact.phone）")
    message: str = Field(description="该字段的中文提示")


class ProblemDocument(BaseModel):
    """RFC 9457 problem details as every service answers them."""

    type: str = Field(description="问题类型地址，末段即 code")
    title: str = Field(description="HTTP 状态的中文标题")
    status: int = Field(description="HTTP 状态码")
    detail: str = Field(description="给用户看的中文说明，可直接展示")
    code: str = Field(description="稳定的机器可读代码，客户端据此分支处理")
    instance: str | None = Field(default=None, description="出错的请求路径")
    request_id: str | None = Field(default=None, description="请求编号，反馈问题时提供")
    errors: list[FieldError] | None = Field(default=None, description="参数校验失败时，逐字段的错误")


ProblemSource = Problem | Callable[[], Problem]


def operation_id(route: APIRoute) -> str:
    """``<tag>-<function>`` (as the FastAPI project template does): short names a generated
    client turns into ``orders_submit_order``, unique across the merged document because a
    tag is one service's resource."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _problem(source: ProblemSource) -> Problem:
    return source if isinstance(source, Problem) else source()


def _example(problem: Problem) -> dict[str, Any]:
    body = problem.body()
    body.pop("request_id", None)
    return {"summary": problem.detail, "value": body}


def problems(*sources: ProblemSource) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each problem it can answer, grouped by status."""
    out: dict[int | str, dict[str, Any]] = {}
    for problem in map(_problem, sources):
        add_problem(out, problem, problem.status)
    return out


def add_problem(responses: dict[Any, dict[str, Any]], problem: Problem, key: int | str) -> None:
    """Document ``problem`` in an operation's ``responses`` under ``key`` (its status)."""
    entry = responses.setdefault(key, {"description": problem.title, "content": {}})
    media = entry.setdefault("content", {}).setdefault(PROBLEM_JSON, {"schema": {"$ref": PROBLEM_REF}})
    media.setdefault("schema", {"$ref": PROBLEM_REF})
    examples = media.setdefault("examples", {})
    if problem.code not in examples:
        examples[problem.code] = _example(problem)
    codes = sorted(examples)
    entry["description"] = f"{problem.title}（code：{'、'.join(codes)}）"


def _callables(route: Any) -> Iterable[Callable[..., Any]]:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            yield dependant.call
        stack.extend(dependant.dependencies)


def _takes_parameters(route: Any) -> bool:
    """Whether the route or any of its dependencies reads a path, query or header parameter
    (an order's id read by the dependency that loads the order counts)."""
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.path_params or dependant.query_params or dependant.header_params:
            return True
        stack.extend(dependant.dependencies)
    return False


def _implied(route: Any) -> list[Problem]:
    """The problems a route gives because of what it takes and whom it lets in."""
    from common import auth
    from common.errors import Problem as P

    implied: list[Problem] = []
    calls = set(_callables(route))
    names = {getattr(c, "__qualname__", "") for c in calls}
    if auth.current_user in calls:
        implied += [
            auth.unauthenticated(),
            auth.token_invalid(),
            auth.token_expired(),
            auth.token_revoked(),
            auth.access_revoked(),
        ]
    if any(n.startswith("require_roles.") for n in names):
        implied.append(auth.forbidden_role())
    implied += [auth.capability_required(c.capability) for c in calls if hasattr(c, "capability")]
    if auth.internal_caller in calls:
        implied += [auth.service_token_required(), auth.service_token_invalid()]
    if _takes_parameters(route) or route.body_field is not None:
        implied.append(
            P(
                422,
                "validation_error",
                "page：应不小于 1",
                errors=[{"field": "page", "message": "应不小于 1"}],
            )
        )
    if route.body_field is not None:
        implied.append(P(400, "malformed_json", "请求体不是有效的 JSON"))
    implied.append(database_busy())
    return implied


def _document(doc: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _DROPPED_SCHEMAS:
        schemas.pop(name, None)
    problem_schema = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = {**problem_schema, "title": "Problem"}
    routes = {
        (method.lower(), route.path_format): route
        for route in routing.iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((method, path))
            if route is None or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses and "application/json" in responses["422"].get("content", {}):
                del responses["422"]
            for problem in _implied(route):
                add_problem(responses, problem, str(problem.status))
    return doc


def install_problem_docs(app: FastAPI) -> None:
    """Make ``app.openapi()`` document problems (called by every app factory)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = _document(doc, app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
