"""Which failures are the database's: it is away, has no room, or asks us to try again.

The one classification both sides use: the consumers and timers (:mod:`common.bus.transient`:
such a failure spends none of an event's retries) and the HTTP error handlers
(:mod:`common.errors`). It depends on the drivers only, so either imports it without a cycle.

- a conflict (SQLSTATE 40001 serialization failure, 40P01 deadlock, 55P03 a lock not had
  within ``lock_timeout``): the database asks us to try again;
- a connection failure (refused, reset, closed, too many clients, the pool's time-out): the
  database does not answer. Its generic forms (``OSError``, ``TimeoutError``) are a
  handler's own failure too (an SMTP server down): :mod:`common.bus.transient` pings the
  database to tell them apart.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc as sa_exc

CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}

_SATURATION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.TooManyConnectionsError,  # 53300 "sorry, too many clients already"
    asyncpg.CannotConnectNowError,  # 57P03 starting up, shutting down, in recovery
    sa_exc.TimeoutError,  # "QueuePool limit of size … overflow … reached": a pool time-out
)
_DATABASE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *_SATURATION_ERRORS,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    sa_exc.DisconnectionError,
)
_GENERIC_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, socket errors
    asyncio.TimeoutError,
)


def chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the driver's error a DBAPIError wraps."""
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
    for e in chain(exc):
        if getattr(e, "sqlstate", None) in CONFLICT_SQLSTATES:
            return True
        if isinstance(e, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
            return True
    return False


def is_connection_failure(exc: BaseException) -> bool:
    """The database does not answer, or may not (a generic ``OSError`` or time-out)."""
    for e in chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, _DATABASE_CONNECTION_ERRORS + _GENERIC_CONNECTION_ERRORS):
            return True
    return False
