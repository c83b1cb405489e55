"""deploy/postgres/init: one database per service, and the gateway's, made on first start."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = "deploy/postgres/init/01-databases.sh"


def created_databases(root: Path) -> list[str]:
    script = (root / SCRIPT).read_text()
    listed = re.search(r'^DATABASES="([^"]*)"', script, flags=re.MULTILINE)
    assert listed, "the script lists its databases in DATABASES"
    return listed.group(1).split()


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


def test_the_script_creates_them_idempotently_owned_by_the_app_role(root: Path) -> None:
    script = (root / SCRIPT).read_text()
    assert "CREATE DATABASE %I OWNER %I" in script and "WHERE NOT EXISTS" in script and "\\gexec" in script
    assert '-v owner="$POSTGRES_USER"' in script
    assert "ON_ERROR_STOP=1" in script
    # Executable: the image runs it (a non-executable .sh would be sourced into its shell).
    assert os.access(root / SCRIPT, os.X_OK)
    assert subprocess.run(["sh", "-n", str(root / SCRIPT)], check=False).returncode == 0


def test_compose_runs_the_init_scripts(compose: dict[str, Any]) -> None:
    assert (
        "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro" in compose["services"]["postgres"]["volumes"]
    )
