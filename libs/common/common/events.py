"""The public contract between services: every event, its envelope and its registry.

An event is a pydantic payload model named ``<service>.<past_tense_fact>``; the envelope
around it carries ``event_id`` (also the AMQP ``message_id`` and the inbox key),
``event_type``, ``version``, ``occurred_at``, ``aggregate_id``, the per-aggregate
``sequence``, ``correlation_id`` and ``causation_id``. A breaking change gets a new version
(a new model registered under the same name).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1


P = TypeVar("P", bound=EventPayload)

_REGISTRY: dict[tuple[str, int], type[EventPayload]] = {}


def event(name: str, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Class decorator registering a payload model under its event name and version."""

    def register(cls: type[P]) -> type[P]:
        cls.event_type = name
        cls.version = version
        key = (name, version)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"event {name} v{version} registered twice")
        _REGISTRY[key] = cls
        return cls

    return register


def payload_model(event_type: str, version: int) -> type[EventPayload] | None:
    return _REGISTRY.get((event_type, version))


def registered_events() -> dict[tuple[str, int], type[EventPayload]]:
    return dict(_REGISTRY)


class Envelope(BaseModel, Generic[P]):
    """What travels on the bus. ``payload`` is the typed model once parsed."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    event_type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    aggregate_id: str
    sequence: int = 0
    correlation_id: str | None = None
    causation_id: str | None = None
    payload: Any

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        aggregate_id: str,
        sequence: int = 0,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_id: str | None = None,
    ) -> Envelope[Any]:
        return cls(
            event_id=event_id or str(uuid.uuid4()),
            event_type=payload.event_type,
            version=payload.version,
            aggregate_id=aggregate_id,
            sequence=sequence,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload,
        )

    def to_json(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json", exclude={"payload"})
        payload = self.payload
        doc["payload"] = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Envelope[Any]:
        """Parse an envelope; the payload becomes its registered model when there is one."""
        env = cls.model_validate({**doc, "payload": doc.get("payload") or {}})
        model = payload_model(env.event_type, env.version)
        if model is not None and isinstance(env.payload, dict):
            env = env.model_copy(update={"payload": model.model_validate(env.payload)})
        return env


class UnknownEvent(Exception):
    """An event type/version this build has no model for."""


# ---------------------------------------------------------------------------------------------
# The catalogue (DESIGN.md "Event catalogue"). Later services add theirs here.
# ---------------------------------------------------------------------------------------------


@event("identity.organization_certified")
class OrganizationCertified(EventPayload):
    org_id: str
    name: str
    uscc: str
    kind: str  # enterprise | provider: what the organisation certified as


@event("identity.organization_suspended")
class OrganizationSuspended(EventPayload):
    org_id: str
    reason: str


@event("identity.organization_restored")
class OrganizationRestored(EventPayload):
    org_id: str
    reason: str


@event("identity.bank_account_changed")
class BankAccountChanged(EventPayload):
    org_id: str
    account_name: str
    bank_name: str
    bank_region: str
    branch_name: str
    account_number: str


@event("catalog.provider_approved")
class ProviderApproved(EventPayload):
    org_id: str
    name: str
