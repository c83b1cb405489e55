"""Events demands consumes: inbox + ordering guard + aggregate lock + one commit.

- identity's and catalog's organisation facts (``common.orgs``): who is certified, a provider,
  suspended. A suspended enterprise's demands leave the public board and come back on
  restore (the board reads the copy); a suspended organisation cannot publish, respond or
  write (``common.orgs.require_active``);
- ``identity.user_access_changed`` (``common.access``): a right taken away is refused here too.
"""

from __future__ import annotations

from common.access import register_access_handlers
from common.bus import Consumer
from common.orgs import register_org_handlers


def build_consumer() -> Consumer:
    consumer = Consumer("demands")
    register_org_handlers(consumer)
    register_access_handlers(consumer)
    return consumer
