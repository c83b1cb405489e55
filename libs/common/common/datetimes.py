"""One date-time type for what clients send (filters such as ``since=``, dates in bodies).

``Moment`` is a timezone-aware ``datetime``: a value without an offset is business time
(Asia/Shanghai, as people type it), and a value PostgreSQL and Python cannot both hold is a
422, not a 500 deep in the driver. Python's ``datetime`` ends at year 9999 and year 1 at
UTC+8 falls off its start when converted, so the accepted range is 1900-01-01 to 9999-12-30
(UTC): every real date of this platform and then some.

    since: Moment | None = None                          # a query parameter
    class FilterIn(BaseModel): until: Moment | None      # a body field
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from common.numbers import SHANGHAI

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _assume_business_time(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=SHANGHAI)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value  # pydantic reports it as not a date-time
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=SHANGHAI)
    return value


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError("日期时间超出范围（须在 1900-01-01 至 9999-12-30 之间）")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_assume_business_time), AfterValidator(_in_range)]

__all__ = ["EARLIEST", "LATEST", "Moment"]
