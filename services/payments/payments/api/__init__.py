"""Public routers, thin: deps -> service -> one commit -> Out. One module per resource."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


async def state_counts(session: AsyncSession, model: type[SQLModel], *conditions: Any) -> dict[str, int]:
    """Counts per state of the rows matching ``conditions`` (the list's tabs), ``all`` included."""
    state = col(model.state)  # type: ignore[attr-defined]
    rows = await session.exec(select(state, func.count()).where(*conditions).group_by(state))
    counts = {str(s): int(n) for s, n in rows.all()}
    counts["all"] = sum(counts.values())
    return counts
