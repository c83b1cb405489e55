"""The RabbitMQ definitions of the whole topology, generated from the registry's table.

    python -m common.bus.topology > deploy/rabbitmq/definitions.json

The file RabbitMQ imports at boot (deploy/rabbitmq) is exactly what every service declares at
start (:meth:`common.bus.rabbitmq.RabbitTransport.declare_topology`): the exchange and its
alternate ``.unrouted`` exchange and (bounded) queue, and for each consuming service of
:func:`common.registry.topology` its queue, retry queues, DLQ and bindings, with the
arguments of the production settings (``BUS_RETRY_DELAYS`` defaults). A test fails when the
committed file and this output differ (tests/deploy/test_rabbitmq.py).

Plus one policy, which no service can declare (policies are not AMQP): the unrouted queue's
length limit once more. A broker's boot-time import keeps a queue that exists as it is (its
arguments never change), so a broker whose unrouted queue was made before it was bounded
gets the bound from this policy at its next boot (verified on RabbitMQ 3.10).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from common import registry
from common.bus.rabbitmq import (
    UNROUTED_MAX_LENGTH,
    dead_letter_queue,
    retry_queue,
    retry_queue_arguments,
    unrouted_queue,
    unrouted_queue_arguments,
)
from common.settings import ServiceSettings

VHOST = "/"
QUORUM = {"x-queue-type": "quorum"}


def _queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(source: str, destination: str, routing_key: str) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": VHOST,
        "destination": destination,
        "destination_type": "queue",
        "routing_key": routing_key,
        "arguments": {},
    }


def unrouted_policy(exchange: str) -> dict[str, Any]:
    """``rabbitmqctl set_policy`` of it, for a broker running now: deploy/README.md."""
    return {
        "vhost": VHOST,
        "name": "voucher-unrouted",
        "pattern": "^" + re.escape(unrouted_queue(exchange)) + "$",
        "apply-to": "queues",
        "definition": {"max-length": UNROUTED_MAX_LENGTH, "overflow": "drop-head"},
        "priority": 10,
    }


def definitions(
    topology: registry.Topology | None = None, retry_delays: Sequence[float] | None = None
) -> dict[str, Any]:
    """The definitions document (vhosts, exchanges, queues, bindings) of ``topology``."""
    topology = topology or registry.topology()
    if retry_delays is None:
        retry_delays = ServiceSettings.model_fields["bus_retry_delays"].default
    exchange = topology.exchange
    unrouted = unrouted_queue(exchange)
    exchanges = [
        {
            "name": unrouted,
            "vhost": VHOST,
            "type": "fanout",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        },
        {
            "name": exchange,
            "vhost": VHOST,
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {"alternate-exchange": unrouted},
        },
    ]
    queues = [_queue(unrouted, unrouted_queue_arguments())]
    bindings = [_binding(unrouted, unrouted, "")]
    for service, event_types in sorted(topology.bindings.items()):
        queues.append(_queue(service, dict(QUORUM)))
        queues.append(_queue(dead_letter_queue(service), dict(QUORUM)))
        for i, delay in enumerate(retry_delays):
            queues.append(_queue(retry_queue(service, i), retry_queue_arguments(service, delay)))
        bindings += [_binding(exchange, service, event_type) for event_type in sorted(event_types)]
    return {
        "vhosts": [{"name": VHOST}],
        "policies": [unrouted_policy(exchange)],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


def render(document: dict[str, Any] | None = None) -> str:
    """As committed: two-space indent, the first line a lone ``{`` (the entrypoint inserts
    the user after it), a final newline."""
    return json.dumps(document or definitions(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
