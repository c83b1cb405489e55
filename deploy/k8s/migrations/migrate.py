"""The migration Job's command: `python migrate.py SERVICE` (deploy/k8s/migrations/jobs.yaml).

Runs SERVICE's alembic migrations to head the way the service itself would at start
(common.db.migrate: its database made when missing, one PostgreSQL advisory lock held so
that two runs never migrate at once), with PostgreSQL's lock_timeout and statement_timeout on
every connection alembic opens: a migration that waits behind the services' locks gives up
after MIGRATION_LOCK_TIMEOUT (default 5s) instead of queueing every request behind its own
lock, and none runs longer than MIGRATION_STATEMENT_TIMEOUT (default 15min). The Job then
fails and is tried again (backoffLimit).

The database: SERVICE_DATABASE_URL (e.g. ORDERS_DATABASE_URL) when set, else POSTGRES_URL's
server and a database named after the service, as the service's settings say. Only that
URL is read: the Job needs none of the service's other settings or secrets.

This is deployment glue, not the platform's code: it composes common.db.migrate with
SQLAlchemy's documented connect event. A `voucher-<service> migrate` command in the
services would replace it (deploy/README.md, "Migrations").
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from common.db import migrate
from common.settings import database_in, to_asyncpg_url

DURATION = re.compile(r"[0-9]+(ms|s|min|h)?")


def duration(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    if not DURATION.fullmatch(value):
        raise SystemExit(f"{name} must be a PostgreSQL duration such as 5s or 15min, not {value!r}")
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not re.fullmatch(r"[a-z]+", argv[0]):
        raise SystemExit("usage: migrate.py SERVICE")
    service = argv[0]
    spec = importlib.util.find_spec(service)
    if spec is None or spec.origin is None:
        raise SystemExit(f"no package {service!r} in this image")
    migrations = Path(spec.origin).parent / "migrations"
    url = os.environ.get(f"{service.upper()}_DATABASE_URL") or database_in(
        os.environ["POSTGRES_URL"], service
    )
    lock_timeout = duration("MIGRATION_LOCK_TIMEOUT", "5s")
    statement_timeout = duration("MIGRATION_STATEMENT_TIMEOUT", "15min")

    @event.listens_for(Engine, "connect")
    def timeouts(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = '{lock_timeout}'")
        cursor.execute(f"SET statement_timeout = '{statement_timeout}'")
        cursor.close()
        # The adapter runs the SETs in a transaction: committed, they hold for the session.
        dbapi_connection.commit()

    asyncio.run(migrate(migrations, to_asyncpg_url(url)))
    print(f"{service}: migrated (lock_timeout {lock_timeout}, statement_timeout {statement_timeout})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
