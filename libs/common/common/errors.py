"""RFC 9457 problem details: a stable ``code`` and a Chinese ``detail`` a client shows as is.

No stack trace ever reaches a client: anything unexpected is logged with the request id and
answered with a generic 500 problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from common.context import request_id_var
from common.dbfailures import is_database_busy
from common.metrics import PROBLEMS

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gxgeq.example/problems/"

_STATUS_TITLES = {
    400: "请求有误",
    401: "未登录或登录已失效",
    403: "无权操作",
    404: "资源不存在",
    405: "不支持的请求方法",
    409: "状态冲突",
    410: "已失效",
    413: "请求体过大",
    414: "请求地址过长",
    415: "不支持的媒体类型",
    422: "参数校验失败",
    429: "请求过于频繁",
    431: "请求头过大",
    500: "服务器内部错误",
    502: "上游服务不可用",
    503: "服务暂不可用",
    504: "上游服务超时",
}


class Problem(Exception):
    """An error a client can act on. Raise it anywhere; the handler renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _STATUS_TITLES.get(status, "错误")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            doc["instance"] = instance
        if self.errors is not None:
            doc["errors"] = self.errors
        if rid := request_id_var.get():
            doc["request_id"] = rid
        doc.update(self.extra)
        return doc


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


# Called with each problem a route answers, after it is counted (common.testing.problem_docs
# compares them with the app's OpenAPI document).
PROBLEM_OBSERVERS: list[Callable[[Scope, Problem], None]] = []


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (as the OpenAPI document names it)."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


def count_problem(scope: Scope, problem: Problem) -> None:
    """``voucher_problems_total``: which route answers which code, for operators (a code that
    suddenly climbs) and for the tests (a code a route answers but does not document)."""
    settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
    service = getattr(settings, "service_name", None) or "unknown"
    PROBLEMS.labels(
        service, scope.get("method", ""), route_template(scope), str(problem.status), problem.code
    ).inc()
    for observe in PROBLEM_OBSERVERS:
        observe(scope, problem)


def _answer(request: Request, problem: Problem) -> JSONResponse:
    count_problem(request.scope, problem)
    return problem_response(problem, request.url.path)


# Convenience constructors for the problems every service raises.
def no_such_path() -> Problem:
    """A path nothing answers (a service's unknown path, the gateway's unrouted one)."""
    return Problem(404, "not_found", "请求的资源不存在")


def not_found(what: str = "资源", code: str = "not_found") -> Problem:
    return Problem(404, code, f"{what}不存在或无权查看")


def forbidden(detail: str = "您无权执行此操作", code: str = "forbidden") -> Problem:
    return Problem(403, code, detail)


def conflict(code: str, detail: str, **extra: Any) -> Problem:
    return Problem(409, code, detail, **extra)


def invalid(field: str, message: str, code: str = "validation_error") -> Problem:
    return Problem(
        422, code, f"{field_label(field)}：{message}", errors=[{"field": field, "message": message}]
    )


# --- validation messages in Chinese ---------------------------------------------------------

FIELD_LABELS: dict[str, str] = {}


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field.rsplit(".", 1)[-1], field)


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    match kind:
        case "missing":
            return "不能为空"
        case "string_too_short":
            return f"长度不能少于 {ctx.get('min_length')} 个字符"
        case "string_too_long":
            return f"长度不能超过 {ctx.get('max_length')} 个字符"
        case "string_pattern_mismatch":
            return "格式不正确"
        case "string_type":
            return "应为字符串"
        case "int_type" | "int_parsing" | "int_from_float":
            return "应为整数"
        case "float_type" | "float_parsing":
            return "应为数字"
        case "bool_type" | "bool_parsing":
            return "应为布尔值"
        case "greater_than":
            return f"应大于 {ctx.get('gt')}"
        case "greater_than_equal":
            return f"应不小于 {ctx.get('ge')}"
        case "less_than":
            return f"应小于 {ctx.get('lt')}"
        case "less_than_equal":
            return f"应不大于 {ctx.get('le')}"
        case "literal_error" | "enum":
            return f"取值应为 {ctx.get('expected', '允许的值之一')}"
        case "list_type":
            return "应为列表"
        case "too_short":
            return "条目太少"
        case "too_long":
            return "条目太多"
        case "dict_type" | "model_type" | "model_attributes_type":
            return "应为 JSON 对象"
        case "datetime_type" | "datetime_parsing" | "datetime_from_date_parsing" | "timezone_aware":
            return "应为日期时间（如 2024-09-13T08:00:00+08:00）"
        case "uuid_type" | "uuid_parsing":
            return "不是有效的编号"
        case "json_invalid":
            return "不是有效的 JSON"
        case "extra_forbidden":
            return "不允许的字段"
        case "value_error" | "assertion_error":
            msg = str(err.get("msg", ""))
            return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ") or "取值不正确"
        case _:
            return "取值不正确"


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problem(exc: RequestValidationError) -> Problem:
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        return Problem(400, "malformed_json", "请求体不是有效的 JSON")
    errors = [{"field": _field(e.get("loc", ())), "message": _message(e)} for e in raw]
    first = errors[0] if errors else {"field": "body", "message": "参数不正确"}
    detail = f"{field_label(first['field'])}：{first['message']}"
    if len(errors) > 1:
        detail += f"（共 {len(errors)} 处错误）"
    return Problem(422, "validation_error", detail, errors=errors)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

_HTTP_DETAILS = {
    404: "请求的资源不存在",
    405: "不支持该请求方法",
    413: "请求体超过大小限制",
}


def database_busy() -> Problem:
    """The database cannot serve the request right now, and the request changed nothing: it is
    unreachable or has no room for another connection (too many clients, the pool's time-out),
    or it cancelled a statement (a lock not had within ``lock_timeout``, ``statement_timeout``,
    a deadlock, a serialization failure). A client retries (``common.dbfailures``)."""
    return Problem(503, "database_busy", "系统繁忙，请稍后重试", headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(request, validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = _HTTP_DETAILS.get(exc.status_code) or _STATUS_TITLES.get(exc.status_code, "请求失败")
        problem = Problem(exc.status_code, code, detail, headers=dict(exc.headers or {}))
        return _answer(request, problem)

    # The database's failures surface as SQLAlchemy's, asyncpg's or (a connection refused at
    # checkout) a bare OSError; whichever is_database_busy does not claim is a 500. (Handled
    # here rather than in the catch-all Exception handler, which Starlette re-raises.)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_busy(exc):
            return await _unexpected(request, exc)
        log.warning("database_busy", path=request.url.path, error=f"{type(exc).__name__}: {exc}"[:200])
        return _answer(request, database_busy())

    for kind in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        problem = Problem(500, "internal_error", "服务器开小差了，请稍后重试")
        return _answer(request, problem)


# The problems of common's own mechanisms, each module re-exporting its own: one place for
# every code a service can answer without writing it (tests/house: one status per code).

# --- characters no request may carry (common.sanitize) ------------------------------------


def invalid_characters(where: str, field: str) -> Problem:
    """The field is the part of the request (``query`` or ``body``): the middleware refuses
    before any parsing, so it cannot name a key inside it."""
    message = f"{where}包含不允许的字符（NUL）"
    return Problem(422, "invalid_characters", message, errors=[{"field": field, "message": message}])


# --- tokens and roles (common.auth) -------------------------------------------------------


def unauthenticated(detail: str = "请先登录", code: str = "unauthenticated") -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": "Bearer"})


def access_revoked() -> Problem:
    return Problem(
        403,
        "access_revoked",
        "您的账号已被停用或权限已变更，原登录凭证不能再使用；如需继续办理，请重新登录或联系管理员",
    )


def forbidden_role() -> Problem:
    return Problem(403, "forbidden_role", "您的账号无权执行此操作")


_CAPABILITY_LABELS = {"enterprise": "完成企业信息认证", "provider": "成为平台服务机构"}


def capability_required(capability: str) -> Problem:
    label = _CAPABILITY_LABELS.get(capability, capability)
    return Problem(403, f"{capability}_required", f"请先{label}后再操作")


def service_token_required() -> Problem:
    return Problem(401, "service_token_required", "内部接口需要服务调用凭证")


def service_token_invalid() -> Problem:
    return Problem(401, "service_token_invalid", "内部调用凭证无效")


# --- face verification results (common.idv) -----------------------------------------------


def verification_invalid() -> Problem:
    return Problem(403, "verification_invalid", "人脸认证结果无效，请重新进行人脸认证")


def verification_expired() -> Problem:
    return Problem(403, "verification_expired", "人脸认证结果已过期，请重新进行人脸认证")


# --- an organisation's standing (common.orgs) ---------------------------------------------


def organization_suspended() -> Problem:
    return Problem(403, "organization_suspended", "贵单位已被平台暂停使用，暂不能办理新的业务，请联系平台")


def organization_syncing() -> Problem:
    """The copy is behind the caller's token and identity cannot be asked now: retry soon."""
    return Problem(409, "organization_syncing", "认证信息同步中，请稍后再试", headers={"Retry-After": "2"})


# --- Idempotency-Key (common.idempotency) -------------------------------------------------


def key_required() -> Problem:
    return Problem(400, "idempotency_key_required", "请求缺少 Idempotency-Key 请求头，请重试")


def key_reused() -> Problem:
    return Problem(
        422,
        "idempotency_key_reused",
        "该 Idempotency-Key 已用于另一个请求，请更换后重试",
        errors=[{"field": "Idempotency-Key", "message": "已用于另一个请求"}],
    )


def key_in_flight() -> Problem:
    return Problem(409, "idempotency_key_in_flight", "相同的请求正在处理中，请稍后查看结果")


def claim_lost() -> Problem:
    return Problem(
        409,
        "idempotency_claim_lost",
        "请求处理超时，已由使用相同 Idempotency-Key 的重试接管，本次请求未生效，请稍后用同一 Idempotency-Key 查看结果",
    )


def dependency_unavailable(service: str, label: str) -> Problem:
    """A service this one must ask did not answer (common.internal; ``label`` its name for users)."""
    return Problem(503, "dependency_unavailable", f"{label}暂不可用，请稍后重试", service=service)


# --- requests the HTTP parser refuses (common.serving) ------------------------------------


def request_target_too_long(limit_bytes: int) -> Problem:
    return Problem(414, "uri_too_long", f"请求地址过长（不能超过 {limit_bytes // 1024} KB）")


def request_headers_too_large(limit_bytes: int) -> Problem:
    return Problem(431, "headers_too_large", f"请求头过大（不能超过 {limit_bytes // 1024} KB）")


def malformed_request() -> Problem:
    return Problem(400, "bad_request", "请求格式不正确")


# --- identity's files, as the other services check them (common.files) --------------------


def file_problem(field: str, code: str, message: str) -> Problem:
    return Problem(422, code, f"{message}（{field}）", errors=[{"field": field, "message": message}])


def file_grant_failed() -> Problem:
    return Problem(502, "file_grant_failed", "文件授权失败，请稍后重试")
