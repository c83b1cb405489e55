"""Requests too large to be read: answered as RFC 9457 problems, not uvicorn's plain text.

A request target (path and query) or a header block past what any client of ours sends is
refused with 414 ``uri_too_long`` / 431 ``headers_too_large``, in two places:

- :class:`RequestLimitsMiddleware`, in the application, for what the HTTP parser let through;
- :class:`ProblemHttpToolsProtocol`, uvicorn's httptools protocol whose parser stops as soon
  as the limit is passed (a 100 KB request line never reaches the application: uvicorn's
  own parser would refuse it first with ``400 Invalid HTTP request received.`` in plain
  text). Its other parse errors are a ``400 bad_request`` problem too. Every process is
  started with it: ``uvicorn --http common.serving:ProblemHttpToolsProtocol`` (the launcher
  and deploy/entrypoint.sh), ``uvicorn.Config(http=...)`` in the all-in-one launcher.

The limits are those of common reverse proxies (nginx answers 414 past 8 KB request lines).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.errors import (
    PROBLEM_JSON,
    Problem,
    problem_response,
    request_headers_too_large,
    request_target_too_long,
)
from common.errors import malformed_request as malformed_request

MAX_REQUEST_TARGET = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024

HTTP_PROTOCOL = "common.serving:ProblemHttpToolsProtocol"
LINGER_SECONDS = 2.0


def uri_too_long() -> Problem:
    return request_target_too_long(MAX_REQUEST_TARGET)


def headers_too_large() -> Problem:
    return request_headers_too_large(MAX_HEADER_BYTES)


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(
                scope.get("query_string", b"")
            )
            if target > MAX_REQUEST_TARGET:
                await problem_response(uri_too_long())(scope, receive, send)
                return
            if sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ())) > MAX_HEADER_BYTES:
                await problem_response(headers_too_large())(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, stopping at the limits and answering problems."""

    _problem: Problem | None = None
    _header_bytes = 0
    _lingering = False

    def on_message_begin(self) -> None:
        self._problem = None
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_REQUEST_TARGET:
            self._problem = uri_too_long()
            raise _TooLarge(self._problem)  # the parser stops: an HttpParserCallbackError

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            self._problem = headers_too_large()
            raise _TooLarge(self._problem)

    def send_400_response(self, msg: str) -> None:
        problem = self._problem or malformed_request()
        body = json.dumps(problem.body(), ensure_ascii=False).encode()
        lines: list[Any] = [f"HTTP/1.1 {problem.status} {_REASONS[problem.status]}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            lines.extend([name, b": ", value, b"\r\n"])
        lines.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(lines))
        # A lingering close (as nginx does): closing with the client's unread bytes still
        # arriving resets the connection, and the client may lose the answer with it. Say no
        # more, read and drop what still comes for a moment, then close.
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        super().data_received(data)


_REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
