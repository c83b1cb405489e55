"""Notifications (what needs a person now): a notice per user, organisation or staff role,
made from the other services' events (demands.handlers) and by demands' own decisions.

The signature below is the contract for demands' own service functions (a demand decided, a
response made, a message replied); the implementation follows once services/demands exists.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession


async def notify(
    session: AsyncSession,
    *,
    kind: str,
    title: str,
    body: str,
    link: str,
    user_id: str | None = None,
    org_id: str | None = None,
    role: str | None = None,
) -> Any:
    """Add one notice in the caller's transaction (never commits) and return its row.

    Exactly one recipient: ``user_id`` (that user), ``org_id`` (every member, owner or agent,
    of the organisation; read state per user) or ``role`` (every staff user of that role;
    administrators see every staff role's notices). ``kind`` is a stable snake_case code
    (``demand_approved``, ``message_replied``, ...); ``title`` and ``body`` are Chinese, as the
    user reads them; ``link`` is the API path of the object (``/api/v1/me/demands/{id}``).

    It takes the notices' sequence (a row lock held until the caller commits, so the stream's
    ids commit in order): call it last in the transaction, after every other lock.
    """
    raise NotImplementedError
