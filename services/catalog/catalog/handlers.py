"""Events catalog consumes: inbox + ordering guard + aggregate lock + one commit."""

from __future__ import annotations

from common.bus import Consumer
from common.orgs import register_org_handlers


def build_consumer() -> Consumer:
    consumer = Consumer("catalog")
    register_org_handlers(consumer)
    return consumer
