"""Refuse input PostgreSQL cannot store before it reaches a handler.

PostgreSQL text cannot hold the NUL character (``\\u0000``): a query with one fails with
"invalid byte sequence", which would surface as a 500. No legitimate identifier, search term
or form field contains one, so a request carrying NUL anywhere is refused up front: in the
path (404: no such resource can exist), in the query string or a JSON body (422).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import invalid_characters as invalid_characters
from common.errors import no_such_path, problem_response

_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


def _has_nul(data: bytes) -> bool:
    return b"\x00" in data or _JSON_NUL.search(data) is not None


class RejectNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if "\x00" in path:
            await problem_response(no_such_path(), None)(scope, receive, send)
            return
        if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await problem_response(invalid_characters("查询参数", "query"), path)(scope, receive, send)
            return
        content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
        if not content_type.startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        # JSON bodies are small (the body limit applies first): read, check, replay.
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if _has_nul(body):
            await problem_response(invalid_characters("请求内容", "body"), path)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
