"""Every problem the gateway answers itself: one factory per stable code."""

from __future__ import annotations

from common.errors import Problem


def passed_on(status: int, code: str, detail: str) -> Problem:
    """A service's own problem, answered as the service gave it."""
    return Problem(status, code, detail)


def rate_limited(wait: int) -> Problem:
    return Problem(
        429, "rate_limited", "请求过于频繁，请稍后再试", headers={"Retry-After": str(wait)}, retry_after=wait
    )


def service_unavailable(detail: str = "服务暂不可用，请稍后重试") -> Problem:
    return Problem(503, "service_unavailable", detail)


def request_incomplete() -> Problem:
    """The client went away before its request body ended: nothing of it was applied."""
    return Problem(400, "request_incomplete", "请求内容不完整，请重新提交")


def upstream_unavailable() -> Problem:
    return Problem(502, "upstream_unavailable", "服务暂不可用，请稍后重试")


def upstream_timeout() -> Problem:
    return Problem(504, "upstream_timeout", "服务响应超时，请稍后重试")


# What the gateway may answer for any operation it routes (documented on each of them).
ROUTED = (rate_limited(1), upstream_unavailable(), service_unavailable(), upstream_timeout())
