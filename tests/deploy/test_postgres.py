"""deploy/postgres/init: one database per service, and the gateway's, made on first start, each
owned by a login role of its own that nobody else may connect as or to (issue 17, §7)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from common import registry

SCRIPT = "deploy/postgres/init/01-databases.sh"


def created_databases(root: Path) -> list[str]:
    script = (root / SCRIPT).read_text()
    listed = re.search(r'^DATABASES="([^"]*)"', script, flags=re.MULTILINE)
    assert listed, "the script lists its databases in DATABASES"
    return listed.group(1).split()


def password_variable(database: str) -> str:
    return f"{database.upper()}_DB_PASSWORD"


def test_a_database_for_every_service_and_the_gateway(
    root: Path, services_in_workspace: list[str], ports: dict[str, int], portal: str
) -> None:
    databases = created_databases(root)
    assert len(databases) == len(set(databases))
    missing = sorted({*services_in_workspace, "gateway"} - set(databases))
    assert not missing, f"add {missing} to DATABASES in {SCRIPT}"
    # The suite's whole list (DESIGN.md): the databases exist before the services do. The
    # portal owns none.
    assert set(databases) == set(ports) - {portal}
    assert set(databases) == {*registry.NAMES, "gateway"}


def test_the_script_is_strict_and_executable(root: Path) -> None:
    script = (root / SCRIPT).read_text()
    assert "ON_ERROR_STOP=1" in script and "set -eu" in script
    # Executable: the image runs it (a non-executable .sh would be sourced into its shell).
    assert os.access(root / SCRIPT, os.X_OK)
    assert subprocess.run(["sh", "-n", str(root / SCRIPT)], check=False).returncode == 0


def test_compose_runs_the_init_scripts(compose: dict[str, Any]) -> None:
    assert (
        "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro" in compose["services"]["postgres"]["volumes"]
    )


# --- against a real server ---------------------------------------------------------------------


class Server:
    """The test server through psql, as its superuser (never the deployment's names)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432),
            "PGUSER": parts.username or "postgres",
            **({"PGPASSWORD": parts.password} if parts.password else {}),
        }
        self.superuser = self.env["PGUSER"]

    def psql(
        self, sql: str, *, user: str | None = None, db: str = "postgres"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", user or self.superuser, "-d", db, "-c", sql],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def value(self, sql: str, **kwargs: Any) -> str:
        result = self.psql(sql, **kwargs)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@pytest.fixture
def server(postgres_server: str) -> Server:
    if shutil.which("psql") is None:
        pytest.fail("no psql next to the test PostgreSQL (the postgres image has it)", pytrace=False)
    return Server(postgres_server)


@pytest.fixture
def names(server: Server) -> Iterator[list[str]]:
    """Two databases (and so two roles) of this test's own."""
    tag = uuid.uuid4().hex[:8]
    made = [f"t{tag}_alpha", f"t{tag}_beta"]
    yield made
    for name in made:
        server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.psql(f'DROP ROLE IF EXISTS "{name}"')


def run_script(
    root: Path, server: Server, names: list[str], passwords: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(root / SCRIPT)],
        env={
            **server.env,
            "POSTGRES_USER": server.superuser,
            "VOUCHER_DATABASES": " ".join(names),
            **passwords,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_each_database_gets_a_role_of_its_own_and_nobody_else_gets_in(
    root: Path, server: Server, names: list[str]
) -> None:
    alpha, beta = names
    # A deployment made before the roles: the superuser owns the database and what is in it
    # (a table with a serial, an enum, a function, a schema), and everybody may connect.
    server.value(f'CREATE DATABASE "{alpha}"')
    server.value(
        "CREATE SCHEMA app; CREATE TYPE app.state AS ENUM ('a', 'b');"
        " CREATE TABLE app.things (id serial PRIMARY KEY, state app.state);"
        " CREATE FUNCTION app.one() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        db=alpha,
    )
    passwords = {password_variable(n): f"pw-{n}" for n in names}
    result = run_script(root, server, names, passwords)
    assert result.returncode == 0, result.stderr

    for name in names:
        assert (
            server.value(
                f"SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{name}'"
            )
            == "t|f|f|f"
        )
        assert (
            server.value(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'") == name
        )
        # PUBLIC has no CONNECT (nor TEMP): only the owner (and the superuser).
        assert server.value(f"SELECT has_database_privilege('public', '{name}', 'CONNECT')") == "f"
        assert server.value("SELECT current_user", user=name, db=name) == name
    # What the superuser made before now belongs to the role, so its migrations can alter it.
    owners = server.value(
        "SELECT string_agg(DISTINCT o, ',') FROM ("
        " SELECT pg_get_userbyid(relowner) o FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace"
        "  WHERE nspname = 'app'"
        " UNION SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'state'"
        " UNION SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'one'"
        " UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app') x",
        db=alpha,
    )
    assert owners == alpha
    altered = server.value("ALTER TABLE app.things ADD COLUMN note text", user=alpha, db=alpha)
    assert altered == "ALTER TABLE"
    # The roles cannot reach each other's databases.
    refused = server.psql("SELECT 1", user=alpha, db=beta)
    assert refused.returncode != 0 and "permission denied" in refused.stderr
    refused = server.psql("SELECT 1", user=beta, db=alpha)
    assert refused.returncode != 0 and "permission denied" in refused.stderr

    # Again (a changed password, a service added later): nothing breaks, nothing is duplicated.
    again = run_script(root, server, names, {k: v + "-new" for k, v in passwords.items()})
    assert again.returncode == 0, again.stderr
    assert server.value(f"SELECT count(*) FROM pg_roles WHERE rolname IN ('{alpha}', '{beta}')") == "2"


def test_a_role_without_its_password_stops_the_script(root: Path, server: Server, names: list[str]) -> None:
    alpha, beta = names
    result = run_script(root, server, names, {password_variable(alpha): "pw"})
    assert result.returncode != 0
    assert password_variable(beta) in result.stderr
    assert "pw" not in result.stderr


async def test_every_service_migrates_to_its_head_as_its_own_role(root: Path, server: Server) -> None:
    """What a service does at start, as the role the init script gives it (no superuser,
    no CREATEDB): ensure its database, take the migration lock, run every migration (catalog
    installs pg_trgm: a trusted extension, which a database owner may create)."""
    from common.db import migrate
    from common.testing.plugin import migrations_of

    tag = uuid.uuid4().hex[:8]
    owners = sorted({*registry.NAMES, "gateway"})
    names = {service: f"t{tag}_{service}" for service in owners}
    try:
        result = run_script(
            root, server, list(names.values()), {password_variable(n): "pw" for n in names.values()}
        )
        assert result.returncode == 0, result.stderr
        for service, name in names.items():
            url = f"postgresql://{name}@{server.env['PGHOST']}:{server.env['PGPORT']}/{name}"
            await migrate(migrations_of(service), url)
            assert server.value("SELECT count(*) > 0 FROM alembic_version", user=name, db=name) == "t", (
                service
            )
    finally:
        for name in names.values():
            server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.psql(f'DROP ROLE IF EXISTS "{name}"')


def test_the_invariants_role_reads_the_databases_it_checks_and_writes_nothing(
    root: Path, server: Server, names: list[str]
) -> None:
    """voucher-invariants' CronJob connects as the role `invariants` (its Secret,
    voucher-invariants-credentials): it reads the databases it checks, no other, and cannot
    write."""
    alpha, beta = names
    reader = f"{alpha}_reader"
    passwords = {password_variable(n): "pw" for n in names}
    try:
        result = subprocess.run(
            ["sh", str(root / SCRIPT)],
            env={
                **server.env,
                "POSTGRES_USER": server.superuser,
                "VOUCHER_DATABASES": " ".join(names),
                "VOUCHER_READER_DATABASES": alpha,
                "VOUCHER_READER_ROLE": reader,
                "INVARIANTS_DB_PASSWORD": "pw-reader",
                **passwords,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        server.value("CREATE TABLE things (id int); INSERT INTO things VALUES (1)", user=alpha, db=alpha)
        assert server.value("SELECT count(*) FROM things", user=reader, db=alpha) == "1"
        written = server.psql("INSERT INTO things VALUES (2)", user=reader, db=alpha)
        assert written.returncode != 0 and "read-only transaction" in written.stderr
        assert (
            server.value(
                f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{reader}'"
            )
            == "f|f|f"
        )
        refused = server.psql("SELECT 1", user=reader, db=beta)
        assert refused.returncode != 0 and "permission denied" in refused.stderr
    finally:
        for name in names:
            server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.psql(f'DROP ROLE IF EXISTS "{reader}"')
