"""站内通知: the caller's notices, read state, and the live stream (Server-Sent Events).

``GET /me/notifications/stream`` sends one event per new notice the caller sees::

    id: 42
    data: {"id": "...", "seq": 42, "kind": "order_awaiting_acceptance", "title": ..., "read": false, ...}

(the default ``message`` event, so ``EventSource.onmessage`` receives it). ``id`` is the
notice's ``seq``, which only grows: a client that reconnects with ``Last-Event-ID`` (the
browser's EventSource sends it by itself; ``?last_event_id=`` does the same for a client that
makes a new EventSource, e.g. with a fresh token) first gets every notice after that id, then
the new ones; without it the stream starts from now. A comment (``: heartbeat``) every
``notifications_heartbeat_seconds`` (15 s) keeps proxies from closing an idle stream.

The token is the usual bearer header, or ``?access_token=`` (this route only: a browser's
EventSource cannot send headers). It is checked again every ``notifications_check_seconds``
and on every notice: once identity revoked it (common.access) or it expired, the stream sends
``event: end`` with the problem's ``code`` and ``detail`` and closes, so a client knows not to
reconnect with the same token. Access logs record the path, never the query string.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser, TokenVerifier, bearer_token
from common.db import Database
from common.errors import Problem
from common.openapi import problems
from common.pagination import Paging
from common.registry import API_PREFIX
from demands import errors
from demands.config import Settings
from demands.deps import Id
from demands.domain.notifications import Reader
from demands.live import NotificationFeed
from demands.models import Notification
from demands.schemas.notifications import NotificationOut, NotificationPage, ReadAllOut
from demands.service import notifications as service

router = APIRouter(prefix=API_PREFIX, tags=["notifications"])


def out(row: Notification | dict[str, Any], read: bool) -> NotificationOut:
    doc = row if isinstance(row, dict) else row.model_dump()
    return NotificationOut.model_validate({**doc, "read": read})


@router.get(
    "/me/notifications",
    response_model=NotificationPage,
    summary="我的站内通知",
    description="登录用户查看发给本人、本单位或本人平台角色的站内通知（可只看未读），新的在前；unread 为未读数。",
    response_description="一页通知及未读数",
)
async def mine(
    user: CurrentUser,
    session: ReadSessionDep,
    paging: Paging,
    unread: Annotated[bool, Query(description="只看未读")] = False,
) -> NotificationPage:
    reader = service.reader_of(user)
    total, rows = await service.page(session, reader, paging, unread_only=unread)
    return NotificationPage(
        items=[out(row, read) for row, read in rows],
        total=total,
        unread=await service.unread(session, reader),
        **paging.echo(),
    )


@router.post(
    "/me/notifications/read-all",
    response_model=ReadAllOut,
    summary="全部已读",
    description="把本人目前可见的通知全部标为已读。",
    response_description="标记后的未读数",
)
async def read_all(user: CurrentUser, session: SessionDep) -> ReadAllOut:
    reader = service.reader_of(user)
    through = await service.mark_all_read(session, reader)
    await session.commit()
    return ReadAllOut(unread=await service.unread(session, reader), read_through=through)


@router.post(
    "/me/notifications/{notification_id}/read",
    response_model=NotificationOut,
    summary="标为已读",
    description="把本人的一条通知标为已读。",
    response_description="已读的通知",
    responses=problems(errors.notification_not_found),
)
async def read_one(notification_id: Id, user: CurrentUser, session: SessionDep) -> NotificationOut:
    row = await service.mark_read(session, service.reader_of(user), notification_id)
    result = out(row, True)
    await session.commit()
    return result


# --- the live stream -----------------------------------------------------------------------------


async def token_from_query(
    request: Request,
    access_token: Annotated[
        str | None, Query(max_length=4096, description="访问令牌（仅供浏览器 EventSource 使用）")
    ] = None,
) -> None:
    """``?access_token=`` becomes the bearer header, for ``current_user`` to check as any other
    (this route only; a header sent as well wins)."""
    if not access_token or any(k == b"authorization" for k, _ in request.scope["headers"]):
        return
    request.scope["headers"] = [
        *request.scope["headers"],
        (b"authorization", f"Bearer {access_token}".encode()),
    ]
    vars(request).pop("_headers", None)  # Starlette keeps the headers it read: read them again


def _event(row: dict[str, Any] | Notification, read: bool) -> str:
    item = out(row, read)
    return f"id: {item.seq}\ndata: {json.dumps(item.model_dump(mode='json'), ensure_ascii=False)}\n\n"


def _end(problem: Problem) -> str:
    data = json.dumps({"code": problem.code, "detail": problem.detail}, ensure_ascii=False)
    return f"event: end\ndata: {data}\n\n"


class Stream:
    """One open stream: catch up from the database, then what the feed hands over."""

    def __init__(
        self, request: Request, reader: Reader, token: str, since: int | None, settings: Settings
    ) -> None:
        self.feed: NotificationFeed = request.app.state.notification_feed
        self.db: Database = request.app.state.db
        self.verifier: TokenVerifier = request.app.state.token_verifier
        self.reader, self.token, self.since = reader, token, since
        self.heartbeat = settings.notifications_heartbeat_seconds
        self.check = min(settings.notifications_check_seconds, self.heartbeat)

    async def ended(self) -> Problem | None:
        """Why the token no longer holds (revoked, expired), or None."""
        try:
            await self.verifier.decode(self.token)
        except Problem as problem:
            return problem
        return None

    async def catch_up(self, last: int) -> AsyncIterator[tuple[int, str]]:
        while True:
            async with self.db.read_session() as session:
                rows = await service.after(session, self.reader, last)
            for row, read in rows:
                last = row.seq
                yield last, _event(row, read)
            if len(rows) < service.CATCH_UP_BATCH:
                return

    async def events(self) -> AsyncIterator[str]:
        sub = self.feed.subscribe(self.reader)  # first: nothing committed from now on is missed
        try:
            yield ": connected\nretry: 3000\n\n"
            last = sub.start if self.since is None else self.since
            async for seq, chunk in self.catch_up(last):
                last = seq
                yield chunk
            quiet_since = time.monotonic()
            while True:
                try:
                    await asyncio.wait_for(sub.wake.wait(), timeout=self.check)
                except TimeoutError:
                    pass
                if (problem := await self.ended()) is not None:
                    yield _end(problem)
                    return
                rows, behind = sub.take()
                sent = False
                if behind:
                    async for seq, chunk in self.catch_up(last):
                        last, sent = seq, True
                        yield chunk
                for row in rows:
                    if int(row["seq"]) > last:
                        last = int(row["seq"])
                        sent = True
                        yield _event(row, False)
                if sent:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= self.heartbeat:
                    quiet_since = time.monotonic()
                    yield ": heartbeat\n\n"
        finally:
            self.feed.unsubscribe(sub)


@router.get(
    "/me/notifications/stream",
    summary="站内通知实时推送（Server-Sent Events）",
    description=(
        "登录用户打开一个 Server-Sent Events 流：先补发 Last-Event-ID（或 last_event_id）之后的通知，"
        "之后每条新通知一个事件；登录凭证失效时发送 end 事件并结束。浏览器 EventSource 可用 access_token"
        " 查询参数传递令牌。"
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "通知事件流，每条新通知一个事件"}},
)
async def stream(
    request: Request,
    _query_token: Annotated[None, Depends(token_from_query)],
    user: CurrentUser,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**62)] = None,
    resume_from: Annotated[
        int | None, Query(alias="last_event_id", ge=0, le=2**62, description="从该通知序号之后继续")
    ] = None,
) -> StreamingResponse:
    token = bearer_token(request)
    assert token is not None  # current_user answered 401 otherwise
    settings: Settings = request.app.state.settings
    since = last_event_id if last_event_id is not None else resume_from
    live = Stream(request, service.reader_of(user), token, since, settings)
    return StreamingResponse(
        live.events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )
