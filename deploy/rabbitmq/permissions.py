"""The broker permissions of each service's own RabbitMQ user, generated from the registry:

    uv run --frozen python deploy/rabbitmq/permissions.py > deploy/rabbitmq/permissions.json

One user per consuming service of :func:`common.registry.topology`, named after it, without
tags (no management UI, no administrator), each regex an exact list of names:

- read: its own queues (the queue, its DLQ, its retry queues: it consumes and inspects them)
  and the two exchanges (binding a queue reads its source);
- configure and write: the same, the unrouted queue every service declares at
  start and the quorum probe queue (``voucher.quorum-probe.<12 hex>``, declared and deleted
  once at start); write also on the default exchange (``amq.default``: a failing event goes
  to its retry queue or DLQ by queue name). Nothing on another service's queues: it cannot
  consume, purge, delete or bind anyone else's. The other consumers' queues, which
  ``RabbitTransport.declare_topology`` declares where it may (so an event published before
  its consumer first ran is kept), are the broker's: imported at boot from definitions.json.

deploy/rabbitmq/entrypoint.sh writes these users (with their passwords' hashes) and this
file's permissions into the definitions the broker imports at boot. A test fails when the
committed file and this output differ (tests/deploy/test_rabbitmq_users.py).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from common import registry
from common.bus.rabbitmq import dead_letter_queue, retry_queue, unrouted_queue
from common.settings import ServiceSettings

VHOST = "/"
DEFAULT_EXCHANGE = "amq.default"
QUORUM_PROBE = r"voucher\.quorum-probe\.[0-9a-f]{12}"


def own_queues(service: str, retry_delays: Sequence[float]) -> list[str]:
    """Every queue a service alone consumes from."""
    return [service, dead_letter_queue(service), *(retry_queue(service, i) for i in range(len(retry_delays)))]


def exactly(names: Iterable[str], *patterns: str) -> str:
    """A regex that matches these names (and patterns) and nothing else."""
    return "^(" + "|".join([*(re.escape(n) for n in names), *patterns]) + ")$"


def permissions(
    topology: registry.Topology | None = None, retry_delays: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    topology = topology or registry.topology()
    if retry_delays is None:
        retry_delays = ServiceSettings.model_fields["bus_retry_delays"].default
    exchange = topology.exchange
    unrouted = unrouted_queue(exchange)  # the alternate exchange and its queue share the name
    consumers = sorted(topology.bindings)
    rows = []
    for service in consumers:
        own = own_queues(service, retry_delays)
        declares = [*own, exchange, unrouted]
        rows.append(
            {
                "user": service,
                "vhost": VHOST,
                "configure": exactly(declares, QUORUM_PROBE),
                "write": exactly([*declares, DEFAULT_EXCHANGE], QUORUM_PROBE),
                "read": exactly([*own, exchange, unrouted]),
            }
        )
    return rows


def render(rows: list[dict[str, Any]] | None = None) -> str:
    """A JSON array, one permission a line (the entrypoint reads the user names by line)."""
    rows = permissions() if rows is None else rows
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    return "[\n" + ",\n".join(f"  {line}" for line in lines) + "\n]\n"


if __name__ == "__main__":
    sys.stdout.write(render())
