"""The event bus: outbox, relay, inbox consumers, transports, dead letters."""

from common.bus.consumer import Consumer
from common.bus.outbox import OutboxRelay, emit
from common.bus.transport import Transport
from common.timers import Poison, RetryLater

__all__ = ["Consumer", "OutboxRelay", "Poison", "RetryLater", "Transport", "emit"]
