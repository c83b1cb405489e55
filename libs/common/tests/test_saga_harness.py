"""The saga harness and the organisation copies, on a real service (quota) over both transports:
an event applied once however often it comes, a late suspension never undoing a newer
restoration, and a handler crashed between two statements applied once after its retry."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from common.events import OrganizationCertified, OrganizationRestored, OrganizationSuspended
from common.testing.saga import SagaHarness


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def org_row(h: SagaHarness, org_id: str) -> dict | None:
    async with h.db("quota").session() as s:
        row = (await s.execute(text("SELECT * FROM org_copies WHERE org_id = :o"), {"o": org_id})).first()
        return dict(row._mapping) if row else None


async def test_an_organisation_copy_follows_identity_whatever_the_order_and_the_duplicates(saga) -> None:
    h = await saga("quota")
    org = "org-1"
    certified = OrganizationCertified(
        org_id=org, name="广西一号制造有限公司", uscc="91450100MA5L0DEM0X", kind="enterprise"
    )
    restored = await h.publish(
        OrganizationRestored(org_id=org, reason="申诉成立"), aggregate_id=org, sequence=3
    )
    await h.publish(OrganizationSuspended(org_id=org, reason="违规"), aggregate_id=org, sequence=2)  # late
    doc = await h.publish(certified, aggregate_id=org, sequence=1)
    await h.redeliver(doc)
    await h.redeliver(restored)
    await h.settle()

    row = await org_row(h, org)
    assert row is not None
    assert row["certified"] is True and row["name"] == "广西一号制造有限公司"
    assert row["suspended"] is False  # the late suspension (2) did not undo the restoration (3)
    async with h.db("quota").session() as s:
        applied = (await s.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
    assert applied == 3  # three distinct events, each applied once


async def test_a_handler_crashed_between_two_statements_is_applied_once_after_the_retry(saga) -> None:
    h = await saga("quota")
    h.crash("quota", OrganizationSuspended.event_type, after_statements=2)
    await h.publish(OrganizationSuspended(org_id="org-2", reason="违规"), aggregate_id="org-2", sequence=1)
    await h.settle()
    row = await org_row(h, "org-2")
    assert row is not None and row["suspended"] is True and row["suspended_reason"] == "违规"


async def test_settle_waits_for_an_event_waiting_out_its_retry_delay(saga) -> None:
    """A retried event waits longer than settle()'s quiet spell: in a RabbitMQ retry queue, or
    as a redelivery timer in the consumer's database. settle() returns only once it is applied
    (it used to return during the wait, and tests asserted too soon)."""
    h = await saga("quota", overrides={"quota": {"bus_retry_delays": [1.5, 1.5]}})
    if h.kind == "inprocess":
        h.transport.retry_delays = [1.5, 1.5]  # type: ignore[union-attr] # the in-process bus's own
    h.crash("quota", OrganizationSuspended.event_type, after_statements=2)
    await h.publish(OrganizationSuspended(org_id="org-3", reason="违规"), aggregate_id="org-3", sequence=1)
    await h.settle()
    row = await org_row(h, "org-3")
    assert row is not None and row["suspended"] is True
