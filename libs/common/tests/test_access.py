"""Rights taken away (common.access): which tokens a revocation refuses, the verifier that
asks it on every call (its cache included), and each process's copy of the revocations in its
service's database: merged in any order, refreshed by transaction id so that a transaction
committing late is never skipped, forgotten once no token can outlive them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from common.access import AccessRevocations, create_access_schema, record
from common.auth import KeySet, TokenVerifier
from common.db import Database
from common.errors import Problem
from common.events import UserAccessChanged

ISS, AUD = "voucher-identity", "voucher-platform"
FreshDb = Callable[[str], Awaitable[str]]


def moment(seconds_ago: float = 0.0) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)


def revoked(
    user: str, change: str = "deactivated", at: datetime | None = None, *sessions: str
) -> UserAccessChanged:
    return UserAccessChanged(
        user_id=user, org_id=None, change=change, not_before=at or moment(), session_ids=list(sessions)
    )


def claims(sub: str = "u1", iat: float | None = None, sid: str | None = "s1") -> dict[str, Any]:
    return {"sub": sub, "iat": time.time() if iat is None else iat, "sid": sid}


# --- which tokens a revocation refuses -------------------------------------------------------


def test_a_user_wide_revocation_refuses_every_earlier_token_of_that_user_only() -> None:
    copy = AccessRevocations()
    at = time.time()
    copy.apply("u1", "", at)
    assert copy.refused(claims("u1", at - 0.001, sid="any"))
    assert copy.refused(claims("u1", at - 600, sid=None))
    assert copy.refused({"sub": "u1"})  # no issue time at all: older than anything
    assert not copy.refused(claims("u1", at))  # issued at the very moment: after it
    assert not copy.refused(claims("u1", at + 0.001))  # the refresh right after a role change
    assert not copy.refused(claims("u2", at - 600))


def test_a_session_revocation_refuses_that_sessions_tokens_and_no_other() -> None:
    copy = AccessRevocations()
    at = time.time()
    copy.apply("u1", "s1", at)
    assert copy.refused(claims("u1", at - 1, sid="s1"))
    assert not copy.refused(claims("u1", at - 1, sid="s2"))  # the user's other device
    assert not copy.refused(claims("u1", at - 1, sid=None))


def test_the_later_moment_of_a_user_or_session_wins() -> None:
    copy = AccessRevocations()
    now = time.time()
    copy.apply("u1", "", now)
    copy.apply("u1", "", now - 60)  # an older revocation arriving late changes nothing
    assert copy.refused(claims("u1", now - 30))
    assert len(copy) == 1


# --- the verifier asks on every call, from its cache or not ----------------------------------


def token(key: Ed25519PrivateKey, **extra: Any) -> str:
    body = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u1",
        "iat": time.time(),
        "exp": int(time.time()) + 600,
        "typ": "access",
        "role": "finance",
        "sid": "s1",
    }
    body.update(extra)
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": "k1"})


async def test_a_cached_token_is_refused_once_revoked_and_a_later_one_is_not() -> None:
    key = Ed25519PrivateKey.generate()
    copy = AccessRevocations()
    verifier = TokenVerifier(
        KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD, revocations=copy
    )
    old = token(key)
    assert (await verifier.principal(old)).role == "finance"
    assert (await verifier.principal(old)).role == "finance"  # now answered from the cache

    copy.apply("u1", "", time.time())
    with pytest.raises(Problem) as refused:
        await verifier.principal(old)
    assert refused.value.status == 401
    assert refused.value.code == "token_revoked"
    assert refused.value.detail == "登录状态已失效，请重新登录"
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}

    time.sleep(0.002)
    fresh = token(key, role="reviewer")
    assert (await verifier.principal(fresh)).role == "reviewer"
    with pytest.raises(Problem):
        await verifier.principal(old)  # still refused, not remembered as good


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("deactivated", 403, "access_revoked"),
        ("role_changed", 403, "access_revoked"),
        ("agent_removed", 403, "access_revoked"),
        ("sessions_revoked", 401, "token_revoked"),
    ],
)
async def test_a_right_taken_away_is_a_403_and_an_ended_session_a_401(
    change: str, status: int, code: str
) -> None:
    """The issue's deactivated finance clerk gets 403 on the payout (the right is gone; signing
    in again does not bring it back), a logged-out token 401 (sign in again)."""
    key = Ed25519PrivateKey.generate()
    copy = AccessRevocations()
    verifier = TokenVerifier(
        KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD, revocations=copy
    )
    old = token(key)
    copy.apply("u1", "", time.time(), change)
    with pytest.raises(Problem) as refused:
        await verifier.principal(old)
    assert (refused.value.status, refused.value.code) == (status, code)


# --- the copy in the service's database ---------------------------------------------------


@pytest_asyncio.fixture
async def db(fresh_db: FreshDb) -> AsyncIterator[Database]:
    database = Database(await fresh_db("access"), pool_size=3)
    async with database.engine.begin() as conn:
        await conn.run_sync(create_access_schema)
    yield database
    await database.dispose()


async def test_events_in_any_order_keep_the_latest_moment_and_the_change_that_set_it(db: Database) -> None:
    earlier, later = moment(60), moment(1)
    async with db.transaction() as s:
        await record(s, revoked("u1", "role_changed", later))
    async with db.transaction() as s:
        await record(s, revoked("u1", "deactivated", earlier))  # late, and a redelivery of it
        await record(s, revoked("u1", "deactivated", earlier))
    async with db.session() as s:
        rows = (await s.execute(text("SELECT session_id, change, not_before FROM access_revocations"))).all()
    assert [(r.session_id, r.change, r.not_before) for r in rows] == [("", "role_changed", later)]


async def test_a_session_revocation_is_a_row_per_session(db: Database) -> None:
    async with db.transaction() as s:
        await record(s, revoked("u1", "sessions_revoked", moment(), "s2", "s1", "s1"))
    copy = AccessRevocations(db)
    assert await copy.refresh() == 2
    assert copy.refused(claims("u1", time.time() - 5, sid="s1"))
    assert copy.refused(claims("u1", time.time() - 5, sid="s2"))
    assert not copy.refused(claims("u1", time.time() - 5, sid="s3"))


async def test_a_refresh_sees_a_transaction_that_commits_after_a_later_one_was_read(db: Database) -> None:
    """The trap of polling by time: a row stamped when its transaction began, committed after
    a newer row was already read. Reading by transaction id, the next refresh sees it."""
    copy = AccessRevocations(db)
    await copy.load()
    slow = db.sessions()
    try:
        await slow.begin()
        await record(slow, revoked("slow"))  # stamped now, not committed yet
        async with db.transaction() as s:
            await record(s, revoked("quick"))
        await copy.refresh()
        assert copy.refused(claims("quick", time.time() - 5))
        assert not copy.refused(claims("slow", time.time() - 5))
        await slow.commit()
    finally:
        await slow.close()
    await copy.refresh()
    assert copy.refused(claims("slow", time.time() - 5))
    # Nothing new: a refresh reads (almost) nothing again.
    assert await copy.refresh() <= 2


async def test_revocations_are_forgotten_once_no_token_can_outlive_them(db: Database) -> None:
    async with db.transaction() as s:
        await record(s, revoked("gone", at=moment(7200)))
        await record(s, revoked("kept", at=moment(60)))
    copy = AccessRevocations(db, retention=timedelta(hours=1))
    await copy.load()
    assert len(copy) == 1 and copy.refused(claims("kept", time.time() - 120))
    assert await copy.prune() == 1
    async with db.session() as s:
        users = (await s.execute(text("SELECT user_id FROM access_revocations"))).scalars().all()
    assert users == ["kept"]


async def test_a_service_without_the_table_does_not_start(fresh_db: FreshDb) -> None:
    database = Database(await fresh_db("no_access"), pool_size=1)
    try:
        with pytest.raises(RuntimeError, match="create_access_schema"):
            await AccessRevocations(database).load()
    finally:
        await database.dispose()


async def test_the_running_copy_refreshes_itself(db: Database) -> None:
    copy = AccessRevocations(db, interval=0.05)
    await copy.load()
    copy.start()
    try:
        async with db.transaction() as s:
            await record(s, revoked("u9"))
        deadline = time.monotonic() + 5
        while not copy.refused(claims("u9", time.time() - 5)):
            assert time.monotonic() < deadline, "the running copy never saw the revocation"
            await asyncio.sleep(0.02)
    finally:
        await copy.stop()
