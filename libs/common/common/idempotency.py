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

A command that is only slow may still be running when its lease runs out, and a retry then
takes the key over. So every claim carries a token of its own (a fresh uuid), and ``done``
and the give-back act only on the claim holding that token: the first command's ``done``
then finds its claim lost and raises ``idempotency_claim_lost`` (409) before its commit, so
its effect rolls back, the second's response stays the stored one, and a failing first
command never gives the second's claim away. The database's ``lock_timeout`` and
``statement_timeout`` (settings, well under :data:`LEASE_SECONDS`) keep a command from
waiting that long on one statement in the first place.

    @router.post("/orders", status_code=201)
    async def submit(body: OrderIn, user: EnterpriseUser, session: SessionDep, idem: Idempotency):
        async with idem.claim(user.user_id, body, session) as claim:
            if claim.replay is not None:
                return claim.replay
            out = await service.submit(session, user, body)
            await claim.done(201, out)
            await session.commit()
            return out

The claim and the give-back each take a pooled connection of their own: the claim is taken
before the request's session first touches the database, and a failure rolls that session
back before the give-back. A request holding its session's connection while the give-back
waits for another deadlocks the pool once as many requests fail at once as it has
connections (orders' ``POST /orders`` did, under load, when quota was killed): the claim
does both, so no route has to remember it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import Database
from common.errors import claim_lost as claim_lost
from common.errors import key_in_flight as key_in_flight
from common.errors import key_required as key_required
from common.errors import key_reused as key_reused
from common.settings import LEASE_SECONDS  # a process that died mid-command leaves its claim
from common.timers import utcnow

log = structlog.get_logger(__name__)

LOCK_NOT_AVAILABLE = "55P03"
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# A give-back waits at most this long for the key's row: a row locked that long is being
# taken over or finished by another claim (the lease frees it otherwise).
GIVE_BACK_LOCK_TIMEOUT = "2s"


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
    session: AsyncSession  # the command's: its response is stored there, with its effect
    # This claim's own token: the key's row holds it while this claim holds the key.
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    replay: JSONResponse | None = None
    _done: bool = False

    async def done(self, status_code: int, response: Any) -> None:
        """Store the response in the command's transaction (committed with its effect).

        Raises ``idempotency_claim_lost`` when the key is no longer this claim's (its lease ran
        out and a retry took it over): the caller must not commit, so its effect rolls back."""
        body = jsonable_encoder(response)
        stored = await self.session.execute(
            text(
                "UPDATE idempotency_keys SET state = 'done', status_code = :s, "
                "response = CAST(:r AS jsonb) "
                "WHERE caller = :c AND key = :k AND token = :t AND state = 'in_flight' RETURNING key"
            ),
            {
                "s": status_code,
                "r": json.dumps(body, ensure_ascii=False),
                "c": self.caller,
                "k": self.key,
                "t": self.token,
            },
        )
        if stored.first() is None:
            log.warning("idempotency_claim_lost", caller=self.caller, key=self.key)
            raise claim_lost()
        self._done = True


class Idempotency:
    """Bound to one request: its ``Idempotency-Key`` header, method, path and database."""

    def __init__(
        self, db: Database, key: str | None, method: str, path: str, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.db = db
        self.key = key
        self.method = method
        self.path = path
        self.lease_seconds = lease_seconds

    @asynccontextmanager
    async def claim(self, caller: str, body: Any, session: AsyncSession) -> AsyncIterator[Claim]:
        """The key claimed for ``caller`` (or its stored response in ``claim.replay``), before
        ``session``, the command's, first touches the database. A command that fails (or ends
        without :meth:`Claim.done`) has its session rolled back, then the key given back: its
        connection is let go first, so a request never holds two."""
        if not self.key:
            raise key_required()
        digest = request_hash(self.method, self.path, body)
        claim = Claim(caller=caller, key=self.key, session=session)
        replay = await self._take_or_replay(claim, digest)
        if replay is not None:
            claim.replay = replay
            yield claim
            return
        try:
            yield claim
        except BaseException:
            await session.rollback()
            await self._give_back(claim)
            raise
        if not claim._done:
            await session.rollback()
            await self._give_back(claim)

    async def _take_or_replay(self, claim: Claim, digest: str) -> JSONResponse | None:
        """Claim the key with the claim's token (own transaction); or the stored response;
        or a problem."""
        caller = claim.caller
        lease = utcnow() + timedelta(seconds=self.lease_seconds)
        async with self.db.transaction() as session:
            taken = await session.execute(
                text(
                    "INSERT INTO idempotency_keys (caller, key, request_hash, state, lease_until, token) "
                    "VALUES (:c, :k, :h, 'in_flight', :l, :t) "
                    "ON CONFLICT (caller, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
                    "lease_until = EXCLUDED.lease_until, token = EXCLUDED.token, created_at = now() "
                    "WHERE idempotency_keys.state = 'in_flight' AND idempotency_keys.lease_until < now() "
                    "RETURNING key"
                ),
                {"c": caller, "k": self.key, "h": digest, "l": lease, "t": claim.token},
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
            return await self._take_or_replay(claim, digest)
        if row.request_hash != digest:
            raise key_reused()
        if row.state != "done":
            raise key_in_flight()
        return JSONResponse(row.response, status_code=row.status_code, headers={REPLAYED_HEADER: "true"})

    async def _give_back(self, claim: Claim) -> None:
        """Free the key for a retry, if it is still this claim's (never another's that took it
        over). A row locked for long belongs to another claim at work: left to its lease."""
        try:
            async with self.db.transaction() as session:
                await session.execute(text(f"SET LOCAL lock_timeout = '{GIVE_BACK_LOCK_TIMEOUT}'"))
                await session.execute(
                    text(
                        "DELETE FROM idempotency_keys "
                        "WHERE caller = :c AND key = :k AND token = :t AND state = 'in_flight'"
                    ),
                    {"c": claim.caller, "k": claim.key, "t": claim.token},
                )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            log.warning("idempotency_give_back_skipped", caller=claim.caller, key=claim.key)


async def idempotency(
    request: Request,
    key: Annotated[str | None, Header(alias=HEADER, min_length=1, max_length=200)] = None,
) -> Idempotency:
    return Idempotency(request.app.state.db, key, request.method, request.url.path)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
