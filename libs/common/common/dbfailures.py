"""Which failures are the database's: it is away, has no room, or asks us to try again.

The one classification both sides use: the consumers and timers (:mod:`common.bus.transient`:
such a failure spends none of an event's retries) and the HTTP error handlers
(:mod:`common.errors`: such a request is answered the retryable 503 ``database_busy``, never
a 500). It depends on the drivers only, so either imports it without a cycle.

- a conflict (SQLSTATE 40001 serialization failure, 40P01 deadlock, 55P03 a lock not had
  within ``lock_timeout``): the database asks us to try again;
- saturation (too many clients, the database system starting up, the pool's time-out): the
  database has no room for another connection right now;
- a connection failure (refused, reset, closed; saturation too): the database does not
  answer. Its generic forms (``OSError``, ``TimeoutError``) are a
  handler's own failure too (an SMTP server down, a missing file): :mod:`common.bus.transient`
  pings the database to tell them apart, a request asks whether the database driver raised
  it.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc as sa_exc

CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}
# A statement that ran longer than ``statement_timeout``: for a request, the database is busy
# (the request changed nothing); a consumer's handler that always runs too long is its own.
STATEMENT_TIMEOUT_SQLSTATE = "57014"

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
_DRIVER_MODULES = ("asyncpg.", "sqlalchemy.")


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


def is_saturation(exc: BaseException) -> bool:
    """The database (or the pool) has no room for another connection right now: a ping may
    well succeed a moment later, the failure is the database's all the same."""
    return any(isinstance(e, _SATURATION_ERRORS) for e in chain(exc))


def is_connection_failure(exc: BaseException) -> bool:
    """The database does not answer, or may not (a generic ``OSError`` or time-out)."""
    for e in chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, _DATABASE_CONNECTION_ERRORS + _GENERIC_CONNECTION_ERRORS):
            return True
    return False


def _raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def is_database_busy(exc: BaseException) -> bool:
    """A request's failure that is the database's: retryable, answered 503 ``database_busy``.

    Conflicts, a statement time-out, saturation and the database's own connection errors; a
    generic ``OSError`` or time-out only when it came out of the database driver (a route's
    other connection refused, or a missing file, stays a 500 to look at)."""
    if is_conflict(exc):
        return True
    for e in chain(exc):
        if getattr(e, "sqlstate", None) == STATEMENT_TIMEOUT_SQLSTATE:
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, _DATABASE_CONNECTION_ERRORS):
            return True
        if isinstance(e, _GENERIC_CONNECTION_ERRORS) and _raised_by_driver(e):
            return True
    return False
