"""Events identity consumes."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from common.bus import Consumer, RetryLater
from common.bus.ordering import ordered
from common.db import lock
from common.events import Envelope, ProviderApproved
from common.timers import utcnow
from identity.models import Organization


def build_consumer() -> Consumer:
    consumer = Consumer("identity")

    @consumer.on("catalog.provider_approved")
    async def provider_approved(session: AsyncSession, event: Envelope[Any]) -> None:
        """Catalog onboarded the organisation: it gains the ``provider`` capability."""
        payload: ProviderApproved = event.payload
        org = await lock(session, Organization, payload.org_id)  # the aggregate lock
        if org is None:
            raise RetryLater(f"organisation {payload.org_id} not known yet")
        if not await ordered(session, consumer.name, event):
            return  # stale: a newer onboarding fact of this organisation is already applied
        if org.is_provider:
            return  # already reflected: nothing changes
        org.is_provider = True
        org.provider_since = utcnow()
        org.updated_at = utcnow()
        session.add(org)

    return consumer
