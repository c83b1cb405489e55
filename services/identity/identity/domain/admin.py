"""Rules of staff accounts and staff lists: pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime

from common.numbers import SHANGHAI

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


def aware(moment: datetime) -> datetime:
    """A time without an offset is business time (Asia/Shanghai)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def like_pattern(q: str) -> str:
    """``%q%`` for ILIKE with the wildcards a user typed taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
