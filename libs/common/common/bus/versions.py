"""Event versions a consumer can read: the newest model of each type, and upcasters.

A breaking change of an event gets a new version (a new model registered under the same
name in :mod:`common.events`). Consumers are written against the newest version they know;
an older document is upcast on arrival by the functions registered here, one step at a
time (v1 -> v2 -> v3). A version NEWER than any this replica knows is not poison: a newer
replica published it during a rolling upgrade, and the event is retried until a replica
that knows it takes it (``unknown_version``).

    @upcaster("orders.order_cancelled", 1)
    def cancelled_v1_to_v2(payload: dict) -> dict:
        return {**payload, "cancelled_by": payload.get("cancelled_by", "system")}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.events import registered_events

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the step that turns ``from_version``'s payload into ``from_version + 1``'s."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def current_version(event_type: str) -> int:
    """The newest version of ``event_type`` with a model in this build (0: none)."""
    return max((v for (t, v) in registered_events() if t == event_type), default=0)


def upcast(doc: dict[str, Any]) -> dict[str, Any]:
    """The document at the newest version its upcasters reach (itself when none applies)."""
    event_type, version = doc.get("event_type"), doc.get("version", 1)
    if not isinstance(event_type, str) or not isinstance(version, int):
        return doc
    payload = doc.get("payload")
    steps = 0
    while (event_type, version) in _UPCASTERS and isinstance(payload, dict):
        payload = _UPCASTERS[(event_type, version)](dict(payload))
        version += 1
        steps += 1
    return {**doc, "version": version, "payload": payload} if steps else doc
