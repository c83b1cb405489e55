"""Numbers people read out on the phone (SVC241206095302922) and how times and dates are shown.

Business time is Asia/Shanghai (the manual's numbers and dates are local), while timestamps are
stored in UTC: everything here converts at the edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

SHANGHAI = ZoneInfo("Asia/Shanghai")

VOUCHER_PREFIX = "SVC"
ORDER_PREFIX = "ORD"
DEMAND_PREFIX = "XQ"

# The sequence is made by common.tables.create_common_schema in every service's database.
_NEXTVAL = text("SELECT nextval('number_seq')")


def shanghai_now() -> datetime:
    """The current time in Asia/Shanghai (timezone-aware)."""
    return datetime.now(SHANGHAI)


def to_shanghai(dt: datetime) -> datetime:
    """``dt`` in Asia/Shanghai. A naive datetime is taken as UTC, because stored timestamps are UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(SHANGHAI)


async def next_number(session: AsyncSession, prefix: str, *, now: datetime | None = None) -> str:
    """``prefix`` + yyMMddHHmmss (Shanghai) + 3 digits from the database sequence.

    The 3 digits are ``nextval('number_seq') % 1000``: the sequence is shared by every replica
    of a service, so numbers made in the same second differ as long as fewer than 1000 are made
    that second (far beyond this platform's load). They are unique per service database, which
    is why each kind of number has one owning service. ``nextval`` is not rolled back, so a
    failed transaction leaves a gap, which is harmless for numbers that only need to be unique.
    """
    when = to_shanghai(now) if now is not None else shanghai_now()
    value = await session.scalar(_NEXTVAL)
    return f"{prefix}{when:%y%m%d%H%M%S}{int(value) % 1000:03d}"


def format_datetime(dt: datetime) -> str:
    """``2024-08-13 16:33:04`` in Shanghai time, as the manual shows times."""
    return f"{to_shanghai(dt):%Y-%m-%d %H:%M:%S}"


def format_date_cn(day: date) -> str:
    """``2024年09月13日``. A datetime is first converted to Shanghai, so its date is the local one."""
    if isinstance(day, datetime):
        day = to_shanghai(day).date()
    return f"{day.year:04d}年{day.month:02d}月{day.day:02d}日"
