"""contracts.domain.seals: who makes a seal (pure, no I/O)."""

from __future__ import annotations

import pytest

from contracts.domain.seals import may_make_seal


@pytest.mark.parametrize(
    ("role", "org_id", "may"),
    [("owner", "org", True), ("agent", "org", False), ("owner", None, False), ("administrator", None, False)],
)
def test_only_an_organisations_owner_makes_its_seal(role: str, org_id: str | None, may: bool) -> None:
    assert may_make_seal(role, org_id) is may
