"""``Idempotency-Key`` for HTTP commands that create orders or money movements.

A client sends the same key when it retries a command (a lost response, a double click).
The first request with a key claims it with one atomic insert keyed by (caller, key); the
claim is committed on its own (it is a trace that must outlive a failed request), so a
second request with that key, while the first is still running, is answered 409 at once.
When the command succeeds, its response is stored in the command's own transaction (its
one commit), so the stored response exists if and only if the command's effect does. Then:

- the same key with the same request (method, path, body) returns the first response,
  status included, with ``Idempotent-Replayed: true``, and changes nothing;
- the same key with another request is a 422 ``idempotency_key_reused``;
- a command that failed (any error) gives its claim back: the client may retry with it;
- a process that died mid-command leaves an ``in_flight`` claim whose lease runs out
  (``lease_seconds``), after which the key can be claimed again.

    @router.post("/orders", status_code=201)
    async def submit(body: OrderIn, user: EnterpriseUser, session: SessionDep, idem: Idempotency):
        async with idem.claim(user.user_id, body) as claim:
            if claim.replay is not None:
                return claim.replay
            out = await service.submit(session, user, body)
            await claim.done(session, 201, out)
            await session.commit()
            return out
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import Database
from common.errors import Problem
from common.timers import utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def key_required() -> Problem:
    return Problem(400, "idempotency_key_required", "请求缺少 Idempotency-Key 请求头，请重试")


def key_reused() -> Problem:
    return Problem(422, "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求，请更换后重试")


def key_in_flight() -> Problem:
    return Problem(409, "idempotency_key_in_flight", "相同的请求正在处理中，请稍后查看结果")


def request_hash(method: str, path: str, body: Any) -> str:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    doc = json.dumps(
        {"m": method, "p": path, "b": jsonable_encoder(body)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass
class Claim:
    caller: str
    key: str
    replay: JSONResponse | None = None
    _done: bool = False

    async def done(self, session: AsyncSession, status_code: int, response: Any) -> None:
        """Store the response in the command's transaction (committed with its effect)."""
        self._done = True
        body = jsonable_encoder(response)
        await session.execute(
            text(
                "UPDATE idempotency_keys SET state = 'done', status_code = :s, "
                "response = CAST(:r AS jsonb) WHERE caller = :c AND key = :k"
            ),
            {"s": status_code, "r": json.dumps(body, ensure_ascii=False), "c": self.caller, "k": self.key},
        )


class Idempotency:
    """Bound to one request: its ``Idempotency-Key`` header, method, path and database."""

    def __init__(
        self, db: Database, key: str | None, method: str, path: str, *, lease_seconds: float = 60.0
    ) -> None:
        self.db = db
        self.key = key
        self.method = method
        self.path = path
        self.lease_seconds = lease_seconds

    @asynccontextmanager
    async def claim(self, caller: str, body: Any) -> AsyncIterator[Claim]:
        if not self.key:
            raise key_required()
        digest = request_hash(self.method, self.path, body)
        claim = Claim(caller=caller, key=self.key)
        replay = await self._take_or_replay(caller, digest)
        if replay is not None:
            claim.replay = replay
            yield claim
            return
        try:
            yield claim
        except BaseException:
            await self._give_back(caller)
            raise
        if not claim._done:
            await self._give_back(caller)

    async def _take_or_replay(self, caller: str, digest: str) -> JSONResponse | None:
        """Claim the key (own transaction); or the stored response; or a problem."""
        lease = utcnow() + timedelta(seconds=self.lease_seconds)
        async with self.db.transaction() as session:
            taken = await session.execute(
                text(
                    "INSERT INTO idempotency_keys (caller, key, request_hash, state, lease_until) "
                    "VALUES (:c, :k, :h, 'in_flight', :l) "
                    "ON CONFLICT (caller, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
                    "lease_until = EXCLUDED.lease_until, created_at = now() "
                    "WHERE idempotency_keys.state = 'in_flight' AND idempotency_keys.lease_until < now() "
                    "RETURNING key"
                ),
                {"c": caller, "k": self.key, "h": digest, "l": lease},
            )
            if taken.first() is not None:
                return None
            row = (
                await session.execute(
                    text(
                        "SELECT request_hash, state, status_code, response FROM idempotency_keys "
                        "WHERE caller = :c AND key = :k"
                    ),
                    {"c": caller, "k": self.key},
                )
            ).first()
        if row is None:  # given back between our insert and our read: take it again
            return await self._take_or_replay(caller, digest)
        if row.request_hash != digest:
            raise key_reused()
        if row.state != "done":
            raise key_in_flight()
        return JSONResponse(row.response, status_code=row.status_code, headers={REPLAYED_HEADER: "true"})

    async def _give_back(self, caller: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                text("DELETE FROM idempotency_keys WHERE caller = :c AND key = :k AND state = 'in_flight'"),
                {"c": caller, "k": self.key},
            )


async def idempotency(
    request: Request,
    key: Annotated[str | None, Header(alias=HEADER, min_length=1, max_length=200)] = None,
) -> Idempotency:
    return Idempotency(request.app.state.db, key, request.method, request.url.path)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
