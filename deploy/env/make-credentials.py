#!/usr/bin/env python3
"""Makes the infrastructure's passwords and each service's own connection credentials, so
that every password is written once and agrees everywhere (any python3, no packages):

    python3 deploy/env/make-credentials.py            # in deploy/env, or --dir DIR

Writes, readable by you alone (0600), never committed:

- postgres.secrets.env: POSTGRES_PASSWORD (the superuser's: the postgres container alone)
  and <DATABASE>_DB_PASSWORD, the password of the role that owns each database
  (deploy/postgres/init/01-databases.sh makes the roles from them);
- rabbitmq.secrets.env: RABBITMQ_DEFAULT_PASS (the broker administrator's: the rabbitmq
  container alone) and <SERVICE>_AMQP_PASSWORD, each service's broker user's
  (deploy/rabbitmq/entrypoint.sh makes the users from them);
- <service>.credentials.env, given to that service alone by docker-compose.yml: POSTGRES_URL
  (the server, as its own role; it connects to the database named after itself) and, for a
  service on the bus, AMQP_URL (as its own broker user). The same files make the
  Kubernetes Secrets voucher-<service>-credentials (deploy/README.md, Kubernetes): the
  cluster's Services are called postgres and rabbitmq too;
- invariants.credentials.env: <SERVICE>_DATABASE_URL of each database voucher-invariants
  reads, as the read-only role `invariants` (INVARIANTS_DB_PASSWORD in postgres.secrets.env;
  the Secret voucher-invariants-credentials of its CronJob).

Run it again at any time: the passwords already in postgres.secrets.env and
rabbitmq.secrets.env are kept, only missing ones (a service added since) are made, and the
credentials files are written from them. To change a password, delete its line and run it;
then `docker compose up -d` (postgres needs `docker compose exec postgres sh
/docker-entrypoint-initdb.d/01-databases.sh` to take a new role password; the broker reads
its users at every start).

The databases come from deploy/postgres/init/01-databases.sh (DATABASES) and the broker
users from deploy/rabbitmq/permissions.json: both are held to the service registry by
tests/deploy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent


def listed(variable: str) -> list[str]:
    """A list deploy/postgres/init/01-databases.sh holds: DATABASES (each with its owning
    role) or READER_DATABASES (those voucher-invariants reads as the role `invariants`)."""
    script = (DEPLOY / "postgres/init/01-databases.sh").read_text(encoding="utf-8")
    found = re.search(rf'^{variable}="([^"]*)"', script, flags=re.MULTILINE)
    if not found:
        raise SystemExit(f"deploy/postgres/init/01-databases.sh lists no {variable}")
    return found.group(1).split()


def broker_users() -> list[str]:
    rows = json.loads((DEPLOY / "rabbitmq/permissions.json").read_text(encoding="utf-8"))
    return [row["user"] for row in rows]


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
            if match:
                values[match.group(1)] = match.group(2)
    return values


def write_env(path: Path, header: str, values: dict[str, str]) -> None:
    text = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    text += "".join(f"{key}={value}\n" for key, value in values.items())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def password() -> str:
    # URL-safe (it goes into URLs as it is) and no '$' for compose to interpolate.
    return secrets.token_urlsafe(32)


def kept_or_made(path: Path, server: str, keys: list[str]) -> dict[str, str]:
    """The server's passwords file rewritten with ``keys``: those it holds kept, the missing made."""
    held = read_env(path)
    values = {key: held.get(key) or password() for key in keys}
    write_env(
        path,
        f"{server}'s passwords: the {path.name.split('.')[0]} container's alone (a compose secret file).\n"
        "Made by deploy/env/make-credentials.py; the services' URLs are in <service>.credentials.env.",
        values,
    )
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE, help="where the env files are (deploy/env)")
    args = parser.parse_args(argv)
    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)

    dbs, users = listed("DATABASES"), broker_users()
    pg = kept_or_made(
        out / "postgres.secrets.env",
        "PostgreSQL",
        ["POSTGRES_PASSWORD", *(f"{db.upper()}_DB_PASSWORD" for db in dbs), "INVARIANTS_DB_PASSWORD"],
    )
    rabbit = kept_or_made(
        out / "rabbitmq.secrets.env",
        "RabbitMQ",
        ["RABBITMQ_DEFAULT_PASS", *(f"{user.upper()}_AMQP_PASSWORD" for user in users)],
    )
    for name in sorted({*dbs, *users}):
        values = {}
        if name in dbs:
            values["POSTGRES_URL"] = f"postgresql://{name}:{pg[f'{name.upper()}_DB_PASSWORD']}@postgres:5432"
        if name in users:
            values["AMQP_URL"] = f"amqp://{name}:{rabbit[f'{name.upper()}_AMQP_PASSWORD']}@rabbitmq:5672/"
        write_env(
            out / f"{name}.credentials.env",
            f"{name}'s own database role and broker user: given to {name} alone.\n"
            "Made by deploy/env/make-credentials.py from postgres.secrets.env and rabbitmq.secrets.env.",
            values,
        )
    write_env(
        out / "invariants.credentials.env",
        "voucher-invariants' read-only role: the databases it checks, nothing written.\n"
        "Made by deploy/env/make-credentials.py from postgres.secrets.env.",
        {
            f"{db.upper()}_DATABASE_URL": f"postgresql://invariants:{pg['INVARIANTS_DB_PASSWORD']}@postgres:5432/{db}"
            for db in listed("READER_DATABASES")
        },
    )
    print(
        f"wrote {out}/postgres.secrets.env, rabbitmq.secrets.env and {len({*dbs, *users}) + 1} credentials files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
