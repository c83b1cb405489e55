"""Which failures are the infrastructure's, not the event's.

A handler that fails because PostgreSQL is unreachable, the pool timed out, or the database
chose it as a deadlock victim or a serialization failure has not failed: the same delivery
succeeds once the database answers (or on the next try). Such failures must never spend an
event's retries (an outage of 13 minutes would otherwise park every event in the DLQ).

- conflicts (SQLSTATE 40001 serialization failure, 40P01 deadlock, 55P03 a lock not had
  within ``lock_timeout``) are transient always;
- a pool time-out is transient always;
- a connection failure (refused, reset, closed, cannot connect now) is transient when the
  database really does not answer a ping: a handler's own ``ConnectionError`` (an SMTP server
  down, say) while the database is fine stays a failure of the handler.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog
from sqlalchemy import exc as sa_exc
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from common.db import Database

log = structlog.get_logger(__name__)

CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, socket errors
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    sa_exc.DisconnectionError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
    return seen


def is_conflict(exc: BaseException) -> bool:
    """A serialization failure or a deadlock: the database asks us to try again."""
    for e in _chain(exc):
        if getattr(e, "sqlstate", None) in CONFLICT_SQLSTATES:
            return True
        if isinstance(e, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
            return True
    return False


def is_connection_failure(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, sa_exc.TimeoutError):  # QueuePool limit reached: a pool time-out
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, _CONNECTION_ERRORS):
            return True
    return False


async def is_transient(exc: BaseException, db: Database | None) -> bool:
    if is_conflict(exc):
        return True
    if any(isinstance(e, sa_exc.TimeoutError) for e in _chain(exc)):
        return True
    if not is_connection_failure(exc):
        return False
    if db is None:
        return True
    return not await ping(db)


PING_TIMEOUT = 3.0


async def ping(db: Database) -> bool:
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            return await db.ping()
    except TimeoutError:
        return False


class DatabaseAway(Exception):
    """The database does not answer (yet)."""


async def wait_for_database(db: Database, *, max_wait: float = 5.0) -> None:
    """Return once the database answers, backing off exponentially (bounded) meanwhile."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(DatabaseAway), wait=wait_exponential(multiplier=0.1, max=max_wait)
    ):
        with attempt:
            if not await ping(db):
                raise DatabaseAway(db.url.rsplit("@", 1)[-1])
