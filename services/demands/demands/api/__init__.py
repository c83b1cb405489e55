"""Public routers, thin: deps -> service -> one commit -> Out. One module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


async def status_counts(
    session: AsyncSession, model: type[SQLModel], tabs: tuple[str, ...], *conditions: Any
) -> dict[str, int]:
    """Counts per status of the rows matching ``conditions`` (the list's tabs, every tab
    present, ``all`` included)."""
    status = col(model.status)  # type: ignore[attr-defined]
    rows = await session.exec(select(status, func.count()).where(*conditions).group_by(status))
    found = {str(s): int(n) for s, n in rows.all()}
    counts = {tab: found.get(tab, 0) for tab in tabs}
    counts["all"] = sum(found.values())
    return counts


def routers() -> list[APIRouter]:
    from demands.api import demands, messages, notices, notifications

    return [demands.router, messages.router, notices.router, notifications.router]
