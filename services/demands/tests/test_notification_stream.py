"""GET /me/notifications/stream: Server-Sent Events over a real HTTP server (the in-process
ASGI client of the other tests waits for a response to end, and a stream does not).

A new notice reaches an open stream at once; a reconnection with ``Last-Event-ID`` first gets
every notice after it; idle streams get heartbeats; a revoked or expired token ends the
stream; the feed's LISTEN/NOTIFY against a plain poll is measured here
(``test_live_delivery_latency``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from demands.domain.notifications import Reader
from demands.live import NotificationFeed
from demands.service import notifications
from fastapi import FastAPI

from common.events import UserAccessChanged
from common.testing.bus import wait_until
from common.testing.saga import SagaHarness, fake_identity
from common.testing.tokens import Caller

from .notification_samples import samples

API = "/api/v1"
HEARTBEAT = 0.4


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The (already started) app on a real socket; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", timeout_graceful_shutdown=1
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Event:
    event: str = "message"
    id: str | None = None
    data: str = ""

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.data))


@dataclass
class Sse:
    """A client's open stream: events and comments as they come."""

    status: int = 0
    content_type: str = ""
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    body: str = ""

    async def next(self, within: float = 20.0) -> Event:  # a bound, not a pace: CI is busy
        return await asyncio.wait_for(self.events.get(), timeout=within)

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.next(seconds)


async def _read(client: httpx.AsyncClient, url: str, headers: dict[str, str], sse: Sse) -> None:
    try:
        async with client.stream("GET", url, headers=headers) as response:
            sse.status = response.status_code
            sse.content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                sse.body = (await response.aread()).decode()
                return
            current = Event()
            async for line in response.aiter_lines():
                if line == "":
                    if current.data or current.id is not None or current.event != "message":
                        await sse.events.put(current)
                    current = Event()
                elif line.startswith(":"):
                    sse.comments.append(line[1:].strip())
                    if line[1:].strip() == "connected":
                        sse.connected.set()
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        current.data = f"{current.data}\n{value}" if current.data else value
                    elif name == "id":
                        current.id = value
                    elif name == "event":
                        current.event = value
    finally:
        sse.closed.set()
        sse.connected.set()


@dataclass
class Live:
    h: SagaHarness
    base: str
    http: httpx.AsyncClient
    enterprise: Caller
    provider: Caller
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(
        self, who: Caller | None, *, last_event_id: int | None = None, query: str = "", header: bool = True
    ) -> Sse:
        headers = dict(who.headers) if (who is not None and header) else {}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        sse = Sse()
        url = f"{self.base}{API}/me/notifications/stream{query}"
        self.tasks.append(asyncio.create_task(_read(self.http, url, headers, sse)))
        await asyncio.wait_for(sse.connected.wait(), timeout=10)
        return sse

    async def new_order(self) -> None:
        """An order for the provider to accept (one notice, to the provider's members)."""
        sample = samples(str(self.enterprise.org_id), str(self.provider.org_id))[0]
        await self.h.publish(sample.payload, aggregate_id=sample.aggregate_id)

    async def seqs(self, who: Caller) -> list[int]:
        r = await self.h.client("demands").get(f"{API}/me/notifications", headers=who.headers)
        return sorted(n["seq"] for n in r.json()["items"])


@pytest_asyncio.fixture
async def live(saga: Callable[..., Awaitable[SagaHarness]]) -> AsyncIterator[Live]:
    identity, _files = fake_identity()
    h = await saga(
        "demands",
        peers={"identity": identity},
        overrides={
            "demands": {
                "notifications_heartbeat_seconds": HEARTBEAT,
                "notifications_check_seconds": 0.1,
            }
        },
    )
    issuer = h.issuer
    async with serving(h["demands"].app) as base, httpx.AsyncClient(timeout=30) as http:
        w = Live(
            h,
            base,
            http,
            enterprise=issuer.member(caps=("enterprise",)),
            provider=issuer.member(caps=("enterprise", "provider")),
        )
        yield w
        for task in w.tasks:
            task.cancel()
        await asyncio.gather(*w.tasks, return_exceptions=True)


async def test_a_new_notice_reaches_the_open_streams_of_those_who_see_it_at_once(live: Live) -> None:
    w = live
    provider = await w.open(w.provider)
    colleague = await w.open(w.h.issuer.caller(role="agent", org_id=w.provider.org_id, caps=("provider",)))
    enterprise = await w.open(w.enterprise)
    assert provider.status == 200 and provider.content_type.startswith("text/event-stream")

    await w.new_order()
    for stream in (provider, colleague):
        event = await stream.next(within=5)
        assert event.event == "message"
        notice = event.json
        assert event.id == str(notice["seq"])
        assert notice["kind"] == "order_awaiting_acceptance" and notice["read"] is False
        assert notice["body"].startswith("您有新的订单待接单：人才培训服务")
    await enterprise.nothing_for(HEARTBEAT * 2)  # not the enterprise's to act on


async def test_a_stream_resumes_after_last_event_id_then_goes_on_live(live: Live) -> None:
    w = live
    for _ in range(3):
        await w.new_order()
    await w.h.settle()
    first, second, third = await w.seqs(w.provider)

    # The browser's reconnection sends the last id it saw (the header): what came after it,
    # oldest first, then the new ones live.
    sse = await w.open(w.provider, last_event_id=first)
    assert [(await sse.next()).id for _ in range(2)] == [str(second), str(third)]
    await w.new_order()
    fourth = int((await sse.next()).id or 0)
    assert fourth > third
    # A new EventSource (a fresh token, say) names it in the query.
    again = await w.open(w.provider, query=f"?last_event_id={second}")
    assert [int((await again.next()).id or 0) for _ in range(2)] == [third, fourth]
    # Without an id the stream starts from now: nothing old.
    fresh = await w.open(w.provider)
    await fresh.nothing_for(HEARTBEAT * 1.5)


async def test_a_notice_that_commits_while_the_stream_opens_arrives_once(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream without an id starts from now; a notice that commits as it opens (after it
    joined the feed, before its first read of the database) reaches it, once. On a busy machine
    that gap is real (CI lost such a notice): this test puts the commit in it."""
    w = live
    before = len(await w.seqs(w.provider))
    published: list[bool] = []

    def committing_first(read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not published:
                published.append(True)
                await w.new_order()
                await wait_until(lambda: _count(w, before + 1), what="the notice committed")
            return await read(*args, **kwargs)

        return wrapped

    for name in ("after", "last_seq"):
        if hasattr(notifications, name):
            monkeypatch.setattr(notifications, name, committing_first(getattr(notifications, name)))
    sse = await w.open(w.provider)
    event = await sse.next()
    assert published and event.json["kind"] == "order_awaiting_acceptance"
    await sse.nothing_for(HEARTBEAT * 1.5)


async def _count(w: Live, n: int) -> bool:
    return len(await w.seqs(w.provider)) >= n


async def test_a_browser_authenticates_with_the_access_token_in_the_query(live: Live) -> None:
    w = live
    sse = await w.open(w.provider, header=False, query=f"?access_token={w.provider.token}")
    assert sse.status == 200
    await w.new_order()
    assert (await sse.next()).json["kind"] == "order_awaiting_acceptance"

    for query in ("", "?access_token=not-a-token"):
        refused = await w.open(None, query=query)
        assert refused.status == 401, refused.body
    # The query token is this route's only: the list still wants the header.
    r = await w.h.client("demands").get(f"{API}/me/notifications?access_token={w.provider.token}")
    assert r.status_code == 401


async def test_an_idle_stream_gets_heartbeats(live: Live) -> None:
    w = live
    sse = await w.open(w.enterprise)
    await asyncio.sleep(HEARTBEAT * 3)
    assert sse.comments.count("heartbeat") >= 2
    assert not sse.closed.is_set()


async def test_the_stream_of_a_user_whose_access_is_revoked_ends(live: Live) -> None:
    w = live
    sse = await w.open(w.provider)
    other = await w.open(w.enterprise)
    await w.h.publish(
        UserAccessChanged(
            user_id=w.provider.user_id,
            org_id=w.provider.org_id,
            change="deactivated",
            not_before=datetime.now(UTC),
        ),
        aggregate_id=w.provider.user_id,
    )
    end = await sse.next(within=5)
    assert end.event == "end" and end.json["code"] == "access_revoked"
    await asyncio.wait_for(sse.closed.wait(), timeout=5)
    # The same token is refused from now on; another user's stream goes on.
    again = await w.open(w.provider)
    assert again.status == 403
    assert not other.closed.is_set()
    await w.new_order()
    await other.nothing_for(0.3)
    assert not other.closed.is_set()


async def test_the_stream_ends_when_the_token_expires(live: Live) -> None:
    w = live
    short = w.h.issuer.caller(
        role="owner", org_id=w.provider.org_id, caps=("provider",), ttl=7
    )  # beyond the verifier's 5 s of leeway, then expired
    sse = await w.open(short)
    end = await sse.next(within=20)
    assert end.event == "end" and end.json["code"] == "token_expired"


async def test_live_delivery_latency(live: Live) -> None:
    """From a notice's commit to a stream's queue: LISTEN/NOTIFY (the poll 5 s behind it)
    against a 1 s poll alone. Printed with ``-s``; the numbers are in demands.live's docstring."""
    db = live.h.db("demands")
    reader = Reader(user_id=str(uuid.uuid4()), role="owner", org_id=str(live.provider.org_id))
    results: dict[str, list[float]] = {}
    for name, feed in (
        ("listen", NotificationFeed(db, poll_seconds=5.0, listen=True)),
        ("poll 1 s", NotificationFeed(db, poll_seconds=1.0, listen=False)),
    ):
        await feed.start()
        sub = feed.subscribe(reader)
        await asyncio.sleep(0.2)  # the listener connected
        took: list[float] = []
        for _ in range(10):
            async with db.transaction() as session:
                await notifications.notify(
                    session, kind="latency", title="测", body="测", link="/x", org_id=reader.org_id
                )
            committed = time.perf_counter()
            await asyncio.wait_for(sub.wake.wait(), timeout=10)
            took.append(time.perf_counter() - committed)
            sub.take()
            await asyncio.sleep(random.uniform(0, 1.0))  # at any moment of the poll's second
        await feed.stop()
        results[name] = took
    for name, took in results.items():
        print(f"{name}: median {statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")
    assert statistics.median(results["listen"]) < 0.25
    assert statistics.median(results["listen"]) < statistics.median(results["poll 1 s"])


async def test_a_long_absence_is_caught_up_in_batches_in_order(live: Live) -> None:
    w = live
    async with w.h.db("demands").transaction() as session:
        for i in range(notifications.CATCH_UP_BATCH + 30):
            await notifications.notify(
                session,
                kind="bulk",
                title="通知",
                body=f"第 {i} 条",
                link="/api/v1/x",
                org_id=w.provider.org_id,
            )
    sse = await w.open(w.provider, last_event_id=0)
    bodies = [(await sse.next()).json["body"] for _ in range(notifications.CATCH_UP_BATCH + 30)]
    assert bodies == [f"第 {i} 条" for i in range(notifications.CATCH_UP_BATCH + 30)]


async def test_a_stream_that_falls_behind_is_told_to_catch_up_from_the_database(live: Live) -> None:
    db = live.h.db("demands")
    feed = NotificationFeed(db, listen=False, backlog=2)  # not started: read by hand below
    sub = feed.subscribe(Reader(user_id="u", role="owner", org_id=str(live.provider.org_id)))
    async with db.transaction() as session:
        for _ in range(3):
            await notifications.notify(
                session, kind="bulk", title="通知", body="正文", link="/api/v1/x", org_id=live.provider.org_id
            )
    assert await feed.read_new() == 3
    rows, behind = sub.take()
    assert rows == [] and behind  # more than it holds: it reads them from the database
    assert sub.take() == ([], False)


async def test_a_feed_with_no_open_stream_reads_nothing_yet_a_stream_opened_later_misses_nothing(
    live: Live,
) -> None:
    """Each notice's NOTIFY names its seq, so a feed nobody listens to moves its cursor without
    a query (every notice of the saga would otherwise cost demands a read); a stream opened
    afterwards gets the next notice live, once."""
    db = live.h.db("demands")
    reader = Reader(user_id=str(uuid.uuid4()), role="owner", org_id=str(live.provider.org_id))
    feed = NotificationFeed(db, poll_seconds=60.0, listen=True)
    await feed.start()
    try:
        await wait_until(lambda: feed.reads >= 1, within=5, what="the listener's first read")
        reads = feed.reads
        seqs = []
        for _ in range(3):
            async with db.transaction() as session:
                notice = await notifications.notify(
                    session, kind="quiet", title="测", body="测", link="/x", org_id=reader.org_id
                )
                seqs.append(notice.seq)
        await wait_until(lambda: feed.last == max(seqs), within=5, what="the cursor at the last notice")
        assert feed.reads == reads

        sub = feed.subscribe(reader)
        assert sub.start == max(seqs)
        async with db.transaction() as session:
            seq = (
                await notifications.notify(
                    session, kind="live", title="测", body="测", link="/x", org_id=reader.org_id
                )
            ).seq
        await asyncio.wait_for(sub.wake.wait(), timeout=5)
        rows, behind = sub.take()
        assert [int(r["seq"]) for r in rows] == [seq] and not behind
    finally:
        await feed.stop()
