"""Which failures are the infrastructure's, not the event's.

A handler that fails because PostgreSQL is unreachable, the pool timed out, or the database
chose it as a deadlock victim or a serialization failure has not failed: the same delivery
succeeds once the database answers (or on the next try). Such failures must never spend an
event's retries (an outage of 13 minutes would otherwise park every event in the DLQ).

- conflicts (SQLSTATE 40001 serialization failure, 40P01 deadlock, 55P03 a lock not had
  within ``lock_timeout``) are transient always;
- saturation (too many clients, cannot connect now, a pool time-out) is transient always: a
  ping a moment later may well find a free connection, the failure was the database's all
  the same (the consumer backs off before it tries again);
- any other connection failure (refused, reset, closed) is transient when the database
  really does not answer a ping: a handler's own ``ConnectionError`` (an SMTP server
  down, say) while the database is fine stays a failure of the handler.

The classification itself is :mod:`common.dbfailures` (the HTTP error handlers share it).
"""

from __future__ import annotations

import asyncio

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from common.db import Database
from common.dbfailures import is_conflict, is_connection_failure, is_saturation

__all__ = [
    "is_conflict",
    "is_connection_failure",
    "is_saturation",
    "is_transient",
    "ping",
    "wait_for_database",
]

log = structlog.get_logger(__name__)


async def is_transient(exc: BaseException, db: Database | None) -> bool:
    if is_conflict(exc):
        return True
    if is_saturation(exc):
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
