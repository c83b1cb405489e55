"""Rules of staff accounts: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from common.rules import Refusal

# --- staff accounts ----------------------------------------------------------------------------


def check_own_change(*, actor_id: str, target_id: str, role: str | None, active: bool | None) -> None:
    """An administrator may rename themself but not demote or deactivate themself (the
    platform would risk losing its last administrator, and nobody could undo it):
    ``cannot_change_self``."""
    if actor_id != target_id:
        return
    if role is not None and role != "administrator":
        raise Refusal("cannot_change_self", detail="不能修改自己的角色，请由其他管理员操作")
    if active is False:
        raise Refusal("cannot_change_self", detail="不能停用自己的账号，请由其他管理员操作")


def staff_changes(
    current: Mapping[str, object], wanted: Mapping[str, object | None]
) -> dict[str, list[object]]:
    """What a staff update changes, field by field as ``[old, new]`` (what the audit log
    keeps); a field not given (None) or given as it is changes nothing."""
    return {
        field: [current[field], value]
        for field, value in wanted.items()
        if value is not None and value != current[field]
    }
