"""quota.domain.campaigns' rules, as the manual and DESIGN.md state them: the windows, Shanghai
dates inclusive."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from quota.domain import campaigns


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (datetime(2024, 9, 12, 15, 59, 59, tzinfo=UTC), False),  # 2024-09-12 23:59:59 in Shanghai
        (datetime(2024, 9, 12, 16, 0, 0, tzinfo=UTC), True),  # 2024-09-13 00:00 in Shanghai
        (datetime(2024, 12, 31, 15, 59, 59, tzinfo=UTC), True),
        (datetime(2024, 12, 31, 16, 0, 0, tzinfo=UTC), False),  # 2025-01-01 in Shanghai
    ],
)
def test_windows_are_inclusive_shanghai_dates(at, inside) -> None:
    lo, hi = campaigns.WINDOWS_2024["general"]
    assert campaigns.in_window(campaigns.business_day(at), lo, hi) is inside


def test_a_window_closes_at_midnight_shanghai_after_its_last_day() -> None:
    assert campaigns.window_end(date(2024, 12, 31)) == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "closed"),
    [
        (datetime(2024, 12, 31, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 on the last day
        (datetime(2024, 12, 31, 16, 0, tzinfo=UTC), True),  # midnight after it, Shanghai
        (datetime(2025, 3, 1, tzinfo=UTC), True),
    ],
)
def test_no_approval_once_the_window_has_closed(now, closed) -> None:
    assert campaigns.window_closed(date(2024, 12, 31), now) is closed
