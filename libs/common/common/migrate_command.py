"""``voucher-<service> migrate``: the service's migrations to head, as the release's migration
Job runs them (deploy/k8s/migrations/jobs.yaml) and as an operator would by hand.

    voucher-orders migrate [--lock-timeout 5s] [--statement-timeout 15min] [--database-url URL]

The same :func:`common.db.migrate` a service runs at start: its database made when missing,
alembic ``upgrade head`` under the advisory lock every migrator of that database takes, with
PostgreSQL's ``lock_timeout`` and ``statement_timeout`` on alembic's connections. A migration
that waits behind the running services' locks gives up after the lock timeout and the
command exits 1 (the Job tries again); a database a newer release already migrated is left as
it is (exit 0, a warning).

The database: ``--database-url``, else ``<SERVICE>_DATABASE_URL``, else ``POSTGRES_URL``'s
server and a database named after the service, as the service's settings say. Only that is
read: the command needs none of the service's other settings or secrets.

Each service's CLI adds it with :func:`add_migrate_command` and runs it with
:func:`run_migrate_command`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path

import asyncpg
from sqlalchemy.exc import DBAPIError

from common.db import MIGRATION_LOCK_TIMEOUT, MIGRATION_STATEMENT_TIMEOUT, migrate
from common.logging import configure_logging
from common.settings import ServiceSettings, database_in, to_asyncpg_url

UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}
DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|min|h)")


def duration(value: str) -> float:
    """``5s``, ``500ms``, ``15min``, ``1h`` (PostgreSQL's units) in seconds."""
    match = DURATION.fullmatch(value.strip())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"a duration such as 5s, 500ms or 15min, not {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def shown(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def add_migrate_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], *, database_url_option: bool = True
) -> argparse.ArgumentParser:
    """``migrate`` among a CLI's subcommands. ``database_url_option=False`` for a CLI whose
    top-level parser already takes ``--database-url`` (orders)."""
    parser = commands.add_parser(
        "migrate",
        help="bring the service's database to this release's migration head (the migration Job)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--lock-timeout",
        type=duration,
        default=MIGRATION_LOCK_TIMEOUT,
        help=f"give up when a lock is not granted within this (default {shown(MIGRATION_LOCK_TIMEOUT)})",
    )
    parser.add_argument(
        "--statement-timeout",
        type=duration,
        default=MIGRATION_STATEMENT_TIMEOUT,
        help=f"cancel a statement running longer (default {shown(MIGRATION_STATEMENT_TIMEOUT)})",
    )
    if database_url_option:
        parser.add_argument(
            "--database-url",
            default=None,
            help="the database (default: <SERVICE>_DATABASE_URL or POSTGRES_URL)",
        )
    return parser


def database_url(service: str, given: str | None = None) -> str:
    """The service's database as its settings would name it, from these variables alone."""
    if given:
        return to_asyncpg_url(given)
    own = os.environ.get(f"{service.upper()}_DATABASE_URL")
    if own:
        return to_asyncpg_url(own)
    server = os.environ.get("POSTGRES_URL") or str(ServiceSettings.model_fields["postgres_url"].default)
    return to_asyncpg_url(database_in(server, service))


def _cause(exc: BaseException) -> str:
    """PostgreSQL's own message (``canceling statement due to lock timeout``), not SQLAlchemy's
    wrapping with the statement."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.PostgresError):
            return str(seen)
        seen = getattr(seen, "orig", None) or seen.__cause__
    return str(exc).splitlines()[0]


def run_migrate_command(service: str, migrations_dir: Path, args: argparse.Namespace) -> int:
    """Run ``migrate`` as parsed by :func:`add_migrate_command`; the exit status."""
    configure_logging("INFO", json=None, service=service, stream=sys.stderr)
    url = database_url(service, getattr(args, "database_url", None))
    timeouts = f"lock_timeout {shown(args.lock_timeout)}, statement_timeout {shown(args.statement_timeout)}"
    try:
        done = asyncio.run(
            migrate(
                migrations_dir, url, lock_timeout=args.lock_timeout, statement_timeout=args.statement_timeout
            )
        )
    except (DBAPIError, asyncpg.PostgresError) as exc:
        print(
            f"{service}: migration failed, nothing of it applied ({timeouts}): {_cause(exc)}", file=sys.stderr
        )
        return 1
    if done.newer_than_code:
        print(
            f"{service}: the database is at revision {done.before}, which this release (head {done.head}) "
            "does not know: a newer release migrated it; nothing done"
        )
    elif done.before == done.after:
        print(f"{service}: already at head {done.after}")
    else:
        print(f"{service}: migrated {done.before or '(empty)'} -> {done.after} ({timeouts})")
    return 0
