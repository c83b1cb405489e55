"""quota.domain.designations' rules: the rows of a designation list."""

from __future__ import annotations

import pytest

from quota.domain import designations

from .samples import TIERS


@pytest.mark.parametrize(
    ("cells", "reason_part"),
    [
        (["91450100MA5L0DEM02", "创新型中小企业"], "校验位"),
        (["123", "创新型中小企业"], "长度"),
        (["", "创新型中小企业"], "请填写"),
    ],
)
def test_a_row_with_a_bad_uscc_is_refused_with_the_reason(cells, reason_part) -> None:
    _u, _d, reason = designations.check_row(cells, designations.known_designations(TIERS), set())
    assert reason is not None and reason_part in reason


def test_a_row_with_an_unknown_designation_or_repeated_in_the_file_is_refused() -> None:
    from stdnum.cn import uscc

    number = "91450100MA5L0DEM0" + uscc.calc_check_digit("91450100MA5L0DEM0")
    known, seen = designations.known_designations(TIERS), set()
    assert designations.check_row([number, "创新型中小企业"], known, seen)[2] is None
    assert "重复" in (designations.check_row([number, "创新型中小企业"], known, seen)[2] or "")
    assert "未知" in (designations.check_row([number, "旅游达人"], known, seen)[2] or "")
