"""Events demands consumes: inbox + ordering guard + aggregate lock + one commit.

- identity's and catalog's organisation facts (``common.orgs``): who is certified, a provider,
  suspended. A suspended enterprise's demands leave the public board and come back on
  restore (the board reads the copy); a suspended organisation cannot publish, respond or
  write (``common.orgs.require_active``);
- ``identity.user_access_changed`` (``common.access``): a right taken away is refused here too;
- every event that needs a person (``demands.domain.notifications.RULES``): its notices. The
  inbox makes a redelivered event make none again; the ordering guard (one stream per event
  type and subject, see the domain module) makes an older fact of the same kind that arrives
  after a newer one make none (a stale "please review" for a contract already revised). A
  notice has no aggregate of its own to lock: the notices' sequence row orders them.
  ``catalog.provider_approved`` is both an organisation fact and a notice: one handler does
  both, the organisation copy first.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import register_access_handlers
from common.bus import Consumer
from common.bus.consumer import Handler
from common.bus.ordering import ordered
from common.events import Envelope
from common.orgs import register_org_handlers
from demands.domain.notifications import EVENT_TYPES, stream_of
from demands.service import notifications


def register_notification_handlers(consumer: Consumer) -> None:
    def handler(before: Handler | None) -> Handler:
        async def notice(session: AsyncSession, event: Envelope[Any]) -> None:
            if before is not None:
                await before(session, event)
            if not await ordered(
                session, consumer.name, event, stream=stream_of(event.event_type, event.payload)
            ):
                return  # a newer fact of this kind is already told
            await notifications.from_event(session, event)

        return notice

    for event_type in EVENT_TYPES:
        consumer.on(event_type)(handler(consumer.handlers.get(event_type)))


def build_consumer() -> Consumer:
    consumer = Consumer("demands")
    register_org_handlers(consumer)
    register_access_handlers(consumer)
    register_notification_handlers(consumer)
    return consumer
