"""People-facing numbers and Shanghai times."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from common.db import Database
from common.numbers import (
    DEMAND_PREFIX,
    ORDER_PREFIX,
    SHANGHAI,
    VOUCHER_PREFIX,
    format_date_cn,
    format_datetime,
    next_number,
    shanghai_now,
)

MANUAL_VOUCHER_NUMBER = "SVC241206095302922"
VOUCHER_NUMBER = re.compile(r"SVC\d{15}")


@pytest.fixture
async def database(fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[Database]:
    db = Database(await fresh_db("numbers"), pool_size=5)
    async with db.transaction() as session:
        await (await session.connection()).execute(text("CREATE SEQUENCE IF NOT EXISTS number_seq"))
    yield db
    await db.dispose()


def test_prefixes() -> None:
    assert (VOUCHER_PREFIX, ORDER_PREFIX, DEMAND_PREFIX) == ("SVC", "ORD", "XQ")


async def test_voucher_number_has_the_manuals_shape(database: Database) -> None:
    assert VOUCHER_NUMBER.fullmatch(MANUAL_VOUCHER_NUMBER)
    # The manual's number was made on 2024-12-06 09:53:02 Beijing time.
    made_at = datetime(2024, 12, 6, 9, 53, 2, tzinfo=SHANGHAI)
    async with database.session() as session:
        number = await next_number(session, VOUCHER_PREFIX, now=made_at)
    assert VOUCHER_NUMBER.fullmatch(number)
    assert number[:15] == MANUAL_VOUCHER_NUMBER[:15]  # SVC241206095302
    assert len(number) == len(MANUAL_VOUCHER_NUMBER)


async def test_order_and_demand_numbers(database: Database) -> None:
    made_at = datetime(2024, 8, 13, 16, 33, 4, tzinfo=SHANGHAI)
    async with database.session() as session:
        order = await next_number(session, ORDER_PREFIX, now=made_at)
        demand = await next_number(session, DEMAND_PREFIX, now=made_at)
    assert re.fullmatch(r"ORD240813163304\d{3}", order)
    assert re.fullmatch(r"XQ240813163304\d{3}", demand)
    assert order[-3:] != demand[-3:]


async def test_number_uses_shanghai_date_across_the_utc_day_boundary(database: Database) -> None:
    # 2024-12-31 16:30 UTC is already 2025-01-01 00:30 in Nanning.
    utc_evening = datetime(2024, 12, 31, 16, 30, 0, tzinfo=UTC)
    async with database.session() as session:
        number = await next_number(session, VOUCHER_PREFIX, now=utc_evening)
        from_naive_utc = await next_number(session, VOUCHER_PREFIX, now=utc_evening.replace(tzinfo=None))
    assert number.startswith("SVC250101003000")
    assert from_naive_utc.startswith("SVC250101003000")  # naive means UTC, as stored


async def test_number_without_now_uses_the_current_shanghai_time(database: Database) -> None:
    before = shanghai_now().replace(microsecond=0)
    async with database.session() as session:
        number = await next_number(session, VOUCHER_PREFIX)
    after = shanghai_now()
    stamp = datetime.strptime(number[3:15], "%y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    assert before <= stamp <= after


async def test_200_numbers_made_concurrently_in_one_second_are_unique(database: Database) -> None:
    same_second = datetime(2024, 12, 6, 9, 53, 2, tzinfo=SHANGHAI)

    async def one_session(count: int) -> list[str]:
        async with database.session() as session:
            numbers = []
            for _ in range(count):
                numbers.append(await next_number(session, VOUCHER_PREFIX, now=same_second))
                await asyncio.sleep(0)  # let the other sessions interleave
            return numbers

    batches = await asyncio.gather(*(one_session(40) for _ in range(5)))
    numbers = [n for batch in batches for n in batch]
    assert len(numbers) == 200
    assert len(set(numbers)) == 200
    assert all(n.startswith("SVC241206095302") for n in numbers)


async def test_numbers_stay_three_digits_when_the_sequence_passes_1000(database: Database) -> None:
    async with database.transaction() as session:
        await session.scalar(text("SELECT setval('number_seq', 1998)"))
    async with database.session() as session:
        numbers = [await next_number(session, "SVC", now=shanghai_now()) for _ in range(3)]
    assert [n[-3:] for n in numbers] == ["999", "000", "001"]


def test_format_datetime_shows_shanghai_time() -> None:
    assert format_datetime(datetime(2024, 8, 13, 8, 33, 4, tzinfo=UTC)) == "2024-08-13 16:33:04"
    assert (
        format_datetime(datetime(2024, 8, 13, 16, 33, 4, 999_999, tzinfo=SHANGHAI)) == "2024-08-13 16:33:04"
    )
    assert format_datetime(datetime(2024, 8, 13, 8, 33, 4)) == "2024-08-13 16:33:04"  # naive = UTC


def test_format_date_cn() -> None:
    assert format_date_cn(date(2024, 9, 13)) == "2024年09月13日"
    assert format_date_cn(date(2024, 12, 31)) == "2024年12月31日"
    # A UTC timestamp late on 12-31 is already 01-01 for the user.
    assert format_date_cn(datetime(2024, 12, 31, 16, 0, tzinfo=UTC)) == "2025年01月01日"


def test_shanghai_now_is_aware_and_eight_hours_ahead_of_utc() -> None:
    now = shanghai_now()
    assert now.utcoffset() == timedelta(hours=8)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
