"""The ordering guard's verdicts on the real PostgreSQL: fresh, stale and early, its row lock
held until the handler's transaction ends, and the one round trip of the usual case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import make_url

from common.bus.ordering import Early, Verdict, check, last_applied, ordered
from common.db import Database, raw
from common.events import Envelope
from common.metrics import DB_STATEMENTS
from common.tables import create_common_schema
from common.testing.bus import bank_changed


@pytest.fixture
async def db(fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[Database]:
    database = Database(await fresh_db("ordering"), pool_size=4)
    async with database.engine.begin() as conn:
        await conn.run_sync(create_common_schema)
    yield database
    await database.dispose()


def nth(sequence: int, aggregate: str = "org-1") -> Envelope[object]:
    return Envelope.wrap(
        bank_changed(aggregate, f"6222 {sequence:04d}"), aggregate_id=aggregate, sequence=sequence
    )


async def verdict(
    db: Database, envelope: Envelope[object], *, contiguous: bool = False, stream: str = ""
) -> Verdict:
    async with db.transaction() as session:
        return await check(session, "c", envelope, stream=stream, contiguous=contiguous)


async def test_fresh_events_advance_and_older_or_repeated_ones_are_stale(db: Database) -> None:
    assert await verdict(db, nth(2)) is Verdict.FRESH  # a first event need not be #1 here
    assert await verdict(db, nth(5)) is Verdict.FRESH  # gaps are fine without contiguous
    assert await verdict(db, nth(5)) is Verdict.STALE
    assert await verdict(db, nth(3)) is Verdict.STALE
    assert await verdict(db, nth(4, "org-2")) is Verdict.FRESH  # another aggregate
    assert await verdict(db, nth(1), stream="bank") is Verdict.FRESH  # another stream
    async with db.transaction() as session:
        assert await last_applied(session, "c", "identity", "org-1") == 5
        assert await last_applied(session, "c", "identity", "org-1", "bank") == 1


async def test_a_contiguous_stream_takes_the_next_sequence_only(db: Database) -> None:
    assert await verdict(db, nth(2), contiguous=True) is Verdict.EARLY  # #1 has not come
    assert await verdict(db, nth(1), contiguous=True) is Verdict.FRESH
    assert await verdict(db, nth(3), contiguous=True) is Verdict.EARLY
    assert await verdict(db, nth(2), contiguous=True) is Verdict.FRESH
    assert await verdict(db, nth(2), contiguous=True) is Verdict.STALE
    async with db.transaction() as session:
        with pytest.raises(Early):
            await ordered(session, "c", nth(4), contiguous=True)


async def test_a_failed_handler_leaves_the_last_applied_sequence_as_it_was(db: Database) -> None:
    assert await verdict(db, nth(1)) is Verdict.FRESH
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            assert await ordered(session, "c", nth(2))
            raise RuntimeError("the handler failed")
    assert await verdict(db, nth(2)) is Verdict.FRESH  # applied again, not stale


async def test_the_guard_holds_its_row_until_the_handlers_transaction_ends(db: Database) -> None:
    assert await verdict(db, nth(1)) is Verdict.FRESH
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def slow_handler() -> None:
        async with db.transaction() as session:
            assert await ordered(session, "c", nth(3))
            first_in.set()
            await release.wait()

    slow = asyncio.create_task(slow_handler())
    await first_in.wait()
    # #2 arrives while #3 is being applied: it waits for #3's transaction, then is stale
    second = asyncio.create_task(verdict(db, nth(2)))
    await asyncio.sleep(0.3)
    assert not second.done()
    release.set()
    await slow
    assert await second is Verdict.STALE


async def test_the_usual_fresh_event_costs_one_statement(db: Database) -> None:
    async with db.transaction() as session:
        connection = await raw(session)
        sent: list[str] = []
        connection.add_query_logger(lambda record: sent.append(record.query))
        assert await check(session, "c", nth(1)) is Verdict.FRESH
        assert await check(session, "c", nth(2)) is Verdict.FRESH
    statements = [q for q in sent if not q.startswith(("BEGIN", "COMMIT"))]
    assert len(statements) == 2 and all(q.startswith("INSERT INTO event_order") for q in statements), sent


async def test_bookkeeping_sent_first_on_the_raw_connection_is_rolled_back_with_the_transaction(
    db: Database,
) -> None:
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement: a guard (or
    # an inbox row) sent on the raw connection before any ORM statement must not autocommit,
    # or a failed handler would leave the event marked as applied.
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            assert await ordered(session, "c", nth(1))
            raise RuntimeError("the handler failed")
    assert await verdict(db, nth(1)) is Verdict.FRESH


async def test_a_transaction_opened_by_the_guard_costs_no_statement_of_its_own(db: Database) -> None:
    """The usual consumer's transaction starts with bookkeeping on the raw connection: its BEGIN
    goes out with it, not after a statement sent only to make SQLAlchemy begin."""
    counter = DB_STATEMENTS.labels(make_url(db.url).database)
    async with db.transaction() as session:  # a warm connection: its setup is not counted
        await check(session, "c", nth(1))
    before = counter._value.get()
    async with db.transaction() as session:
        assert await check(session, "c", nth(2)) is Verdict.FRESH
    assert counter._value.get() - before == 1
