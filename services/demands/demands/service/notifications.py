"""Notifications (what needs a person now): a notice per user, organisation or staff role,
made from the other services' events (``demands.handlers``) and by demands' own decisions
(:func:`notify`). Nothing here commits.

Order: every notice takes the next ``seq`` from the one ``notification_sequence`` row, whose
lock is held until its transaction ends, so notices commit in ``seq`` order: a reader that saw
``seq`` n has seen every notice before it, which is what lets a stream resume from
``Last-Event-ID`` and the live feed read ``seq > last``. The cost is that transactions making
notices take turns from the moment they take the number: :func:`notify` is called last.
Each notice also sends ``NOTIFY demands_notifications`` (delivered at commit), which wakes
every demands process's live feed (``demands.live``).

Read state is per user: a row in ``notification_reads`` per notice read, and a mark per user
(``notification_read_marks.read_through``) for 全部已读, so marking thousands read is one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, literal, not_, or_, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import MEMBER_ROLES, Principal
from common.events import Envelope
from common.pagination import PageParams, paginate
from common.timers import utcnow
from demands import errors
from demands.domain.notifications import Draft, Reader, Recipient, drafts_for, roles_seen_by
from demands.models import Notification, NotificationRead, NotificationReadMark

CHANNEL = "demands_notifications"

_NEXT_SEQ = text(
    "INSERT INTO notification_sequence (id, last_seq) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET last_seq = notification_sequence.last_seq + 1 RETURNING last_seq"
)
_WAKE = text("SELECT pg_notify(:channel, :seq)")


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
) -> Notification:
    """Add one notice in the caller's transaction (never commits) and return its row.

    Exactly one recipient: ``user_id`` (that user), ``org_id`` (every member, owner or agent,
    of the organisation; read state per user) or ``role`` (every staff user of that role;
    administrators see every staff role's notices). ``kind`` is a stable snake_case code
    (``demand_approved``, ``message_replied``, ...); ``title`` (≤ 100) and ``body`` are Chinese,
    as the user reads them; ``link`` is the API path of the object (``/api/v1/me/demands/{id}``).
    A recipient or field out of these rules is a ValueError (a programming error).

    It takes the notices' sequence (a row lock held until the caller commits, so the stream's
    ids commit in order): call it last in the transaction, after every other lock.
    """
    draft = Draft(kind, title, body, link, Recipient(user_id=user_id, org_id=org_id, role=role))
    return await add(session, draft)


async def add(
    session: AsyncSession, draft: Draft, *, event_id: str | None = None, at: datetime | None = None
) -> Notification:
    seq = int((await session.execute(_NEXT_SEQ)).scalar_one())
    row = Notification(
        seq=seq,
        kind=draft.kind,
        title=draft.title,
        body=draft.body,
        link=draft.link,
        user_id=draft.to.user_id,
        org_id=draft.to.org_id,
        role=draft.to.role,
        event_id=event_id,
        created_at=at or utcnow(),
    )
    session.add(row)
    await session.flush()
    await session.execute(_WAKE, {"channel": CHANNEL, "seq": str(seq)})
    return row


async def from_event(session: AsyncSession, event: Envelope[Any]) -> list[Notification]:
    """The notices an event makes, dated when it happened in the service that did it."""
    return [
        await add(session, draft, event_id=event.event_id, at=event.occurred_at)
        for draft in drafts_for(event.payload)
    ]


# --- who sees what -------------------------------------------------------------------------------


def reader_of(principal: Principal) -> Reader:
    return Reader(user_id=principal.user_id, role=principal.role, org_id=principal.org_id)


def recipient_of(row: Notification) -> Recipient:
    return Recipient(user_id=row.user_id, org_id=row.org_id, role=row.role)


def visible_to(reader: Reader) -> Any:
    """The SQL condition of :func:`demands.domain.notifications.sees`."""
    conditions: list[Any] = [col(Notification.user_id) == reader.user_id]
    if reader.org_id and reader.role in MEMBER_ROLES:
        conditions.append(col(Notification.org_id) == reader.org_id)
    if roles := roles_seen_by(reader.role):
        conditions.append(col(Notification.role).in_(roles))
    return or_(*conditions)


def is_read(reader: Reader) -> Any:
    mark = (
        select(NotificationReadMark.read_through)
        .where(col(NotificationReadMark.user_id) == reader.user_id)
        .scalar_subquery()
    )
    one = exists().where(
        col(NotificationRead.notification_id) == col(Notification.id),
        col(NotificationRead.user_id) == reader.user_id,
    )
    return or_(col(Notification.seq) <= func.coalesce(mark, literal(0)), one)


# --- reading -------------------------------------------------------------------------------------


async def page(
    session: AsyncSession, reader: Reader, paging: PageParams, *, unread_only: bool = False
) -> tuple[int, list[tuple[Notification, bool]]]:
    """The reader's notices, newest first, each with whether the reader has read it."""
    read = is_read(reader)
    query = select(Notification, read.label("read")).where(visible_to(reader))
    if unread_only:
        query = query.where(not_(read))
    query = query.order_by(col(Notification.seq).desc())
    total, rows = await paginate(session, query, paging)
    return total, [(row[0], bool(row[1])) for row in rows]


async def unread(session: AsyncSession, reader: Reader) -> int:
    query = select(func.count()).select_from(Notification).where(visible_to(reader), not_(is_read(reader)))
    return int((await session.exec(query)).one())


CATCH_UP_BATCH = 200


async def after(
    session: AsyncSession, reader: Reader, seq: int, *, limit: int = CATCH_UP_BATCH
) -> list[tuple[Notification, bool]]:
    """The reader's notices after ``seq``, oldest first (a stream's catching up)."""
    read = is_read(reader)
    query = (
        select(Notification, read.label("read"))
        .where(visible_to(reader), col(Notification.seq) > seq)
        .order_by(col(Notification.seq))
        .limit(limit)
    )
    return [(row[0], bool(row[1])) for row in (await session.exec(query)).all()]


# --- marking read --------------------------------------------------------------------------------


async def mark_read(session: AsyncSession, reader: Reader, notification_id: str) -> Notification:
    """The reader has read this notice (again: nothing changes); 404 for one not theirs."""
    row = (
        await session.exec(
            select(Notification).where(col(Notification.id) == notification_id, visible_to(reader))
        )
    ).first()
    if row is None:
        raise errors.notification_not_found()
    await session.execute(
        pg_insert(NotificationRead)
        .values(notification_id=row.id, user_id=reader.user_id, read_at=utcnow())
        .on_conflict_do_nothing()
    )
    return row


async def mark_all_read(session: AsyncSession, reader: Reader) -> int:
    """全部已读: every notice the reader sees now (up to the newest one's seq); returns that seq.
    Notices commit in seq order, so none at or below it can still appear unread later."""
    through = int(
        (
            await session.exec(select(func.coalesce(func.max(Notification.seq), 0)).where(visible_to(reader)))
        ).one()
    )
    if through == 0:
        return 0
    stmt = pg_insert(NotificationReadMark).values(
        user_id=reader.user_id, read_through=through, updated_at=utcnow()
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "read_through": func.greatest(col(NotificationReadMark.read_through), through),
                "updated_at": utcnow(),
            },
        )
    )
    # the single reads the mark now covers are of no more use
    covered = select(Notification.id).where(col(Notification.seq) <= through)
    await session.execute(
        NotificationRead.__table__.delete().where(  # type: ignore[attr-defined]
            and_(
                col(NotificationRead.user_id) == reader.user_id,
                col(NotificationRead.notification_id).in_(covered),
            )
        )
    )
    return through
