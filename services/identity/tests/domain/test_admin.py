"""identity.domain.admin: the pure rules behind the staff routes."""

from __future__ import annotations

import pytest

from common.rules import Refusal
from identity.domain import admin


@pytest.mark.parametrize(
    ("role", "active", "why"),
    [
        ("reviewer", None, "不能修改自己的角色，请由其他管理员操作"),
        (None, False, "不能停用自己的账号，请由其他管理员操作"),
    ],
)
def test_an_administrator_cannot_demote_or_deactivate_themself(
    role: str | None, active: bool | None, why: str
) -> None:
    with pytest.raises(Refusal) as refused:
        admin.check_own_change(actor_id="a", target_id="a", role=role, active=active)
    assert refused.value == Refusal("cannot_change_self", detail=why)


def test_an_administrator_may_rename_themself_and_change_others() -> None:
    admin.check_own_change(actor_id="a", target_id="a", role="administrator", active=True)
    admin.check_own_change(actor_id="a", target_id="b", role="reviewer", active=False)


def test_a_staff_update_changes_only_what_is_given_and_different() -> None:
    now = {"name": "王审核", "role": "reviewer", "active": True}
    assert admin.staff_changes(now, {"name": "王审核", "role": None, "active": None}) == {}
    assert admin.staff_changes(now, {"name": "王财务", "role": "finance", "active": False}) == {
        "name": ["王审核", "王财务"],
        "role": ["reviewer", "finance"],
        "active": [True, False],
    }
