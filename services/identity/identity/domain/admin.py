"""Rules of staff accounts: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

# --- staff accounts ----------------------------------------------------------------------------


def own_change_problem(*, actor_id: str, target_id: str, role: str | None, active: bool | None) -> str | None:
    """An administrator may rename themself but not demote or deactivate themself (the
    platform would risk losing its last administrator, and nobody could undo it)."""
    if actor_id != target_id:
        return None
    if role is not None and role != "administrator":
        return "不能修改自己的角色，请由其他管理员操作"
    if active is False:
        return "不能停用自己的账号，请由其他管理员操作"
    return None


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
