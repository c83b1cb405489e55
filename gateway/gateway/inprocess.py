"""An httpx transport to an ASGI app in the same process that answers as the app answers.

The all-in-one launcher mounts every service in the gateway's process and the gateway forwards
to them through httpx. httpx's own ``ASGITransport`` (httpx 0.28) runs the app to its end and
only then returns the response, body and all, and it tells the app that the client left only
after that end: an event stream, which ends when the user leaves, would never be answered.

:class:`ASGIStreamTransport` returns the response as soon as the app starts it and hands the
body on chunk by chunk as the app sends it; closing the response (the client went away) makes
the app's ``receive()`` answer ``http.disconnect`` and its next send fail, and the app is
cancelled if it has not ended ``disconnect_grace`` seconds later. An ordinary answer is what
``ASGITransport`` gave: its body ends once the app has returned (work done after the last send,
a background task, is done by then) and an exception of the app is raised to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream
from starlette.types import ASGIApp, Message

log = structlog.get_logger(__name__)


class ClientDisconnected(OSError):
    """What the app's send raises once the client has gone (as ASGI servers do)."""


class ASGIStreamTransport(httpx.AsyncBaseTransport):
    # How long an app told that the client left may take to end before it is cancelled.
    disconnect_grace = 1.0
    # How many chunks the app may send ahead of the reader before its send waits.
    buffered_chunks = 16

    def __init__(
        self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 123), root_path: str = ""
    ) -> None:
        self.app = app
        self.client = client
        self.root_path = root_path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": self.root_path,
        }
        request_chunks = request.stream.__aiter__()
        request_complete = False
        head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        sender, receiver = anyio.create_memory_object_stream[bytes](self.buffered_chunks)
        ended = asyncio.Event()  # the response is complete, or the client went away
        state = {"complete": False, "gone": False}

        async def receive() -> Message:
            nonlocal request_complete
            if not request_complete:
                try:
                    chunk = await request_chunks.__anext__()
                except StopAsyncIteration:
                    request_complete = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                except Exception:  # noqa: BLE001 - any failure of the body's source
                    # The body broke off (the gateway cut it, or its client left): the app is
                    # told so as a server tells it, and never sees the body end.
                    request_complete = True
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": chunk, "more_body": True}
            await ended.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if state["gone"]:
                raise ClientDisconnected("the client went away")
            if message["type"] == "http.response.start":
                if head.done():
                    raise RuntimeError("the response was started twice")
                head.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                if state["complete"] or not head.done():
                    raise RuntimeError("a response body outside a response")
                body = message.get("body", b"")
                if body and request.method != "HEAD":
                    try:
                        await sender.send(body)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        raise ClientDisconnected("the client went away") from None
                if not message.get("more_body", False):
                    state["complete"] = True
                    ended.set()
                    sender.close()

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                sender.close()

        def leave() -> None:
            state["gone"] = True
            ended.set()
            receiver.close()

        task = asyncio.create_task(run())
        try:
            await asyncio.wait((head, task), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            leave()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if not head.done():
            head.cancel()
            receiver.close()
            task.result()  # the app's exception, raised as ASGITransport raised it
            raise RuntimeError("the app returned without a response")
        status, headers = head.result()
        return httpx.Response(
            status, headers=headers, stream=_AppBody(receiver, task, leave, self.disconnect_grace)
        )


class _AppBody(httpx.AsyncByteStream):
    def __init__(
        self,
        chunks: MemoryObjectReceiveStream[bytes],
        task: asyncio.Task[None],
        leave: Callable[[], None],
        grace: float,
    ) -> None:
        self._chunks = chunks
        self._task = task
        self._leave = leave
        self._grace = grace
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk
        self._finished = True
        # The body ends when the app has returned; its exception is the caller's, as before.
        await asyncio.shield(self._task)

    async def aclose(self) -> None:
        task = self._task
        try:
            if not task.done():
                self._leave()
                await asyncio.wait({task}, timeout=self._grace)
        finally:
            task.cancel()  # nothing when it has ended
            self._chunks.close()
            (failure,) = await asyncio.gather(task, return_exceptions=True)
        if (
            not self._finished
            and isinstance(failure, Exception)
            and not isinstance(failure, ClientDisconnected)
        ):
            log.error("in_process_app_failed", exc_info=failure)
