"""The previous release's code on the newest schema (issue 17, section 4; CONTRIBUTING,
"Migrations"): every service's newest migration is expand-only, so `kubectl rollout undo`
after it, or a replica of the previous release still serving during the rollout, works.

What "the previous release" is: releases are not marked in git (no tags), and images are
built from any commit, so for each service it is the commit just before the one that added
its newest migration: the last code that ran without it. Its service package and
``libs/common`` are taken from git (``git archive``) into a temporary folder and run in a
subprocess that imports them instead of today's (``PYTHONPATH`` first), with today's
third-party packages.

Per service, against two databases:

- *old*: migrated by the previous release's own migrations (its ``env.py``, its models, its
  ``common``): the schema that code was written for;
- *new*: migrated by today's migrations to head (the ``fresh_db`` template).

Then:

1. the previous release's models (the metadata its ``env.py`` hands to alembic: every table
   it reads and writes, the common tables included) each run ``SELECT <every column it
   knows> ... LIMIT 1`` on *new*: a table or column dropped or renamed fails here;
2. every column of *old* is in *new* with the same type and length, and not made NOT NULL
   without a default (the old code would insert NULL or nothing);
3. every column *new* adds to a table *old* had is nullable, has a default, or is generated
   (the old code's INSERTs do not name it).

Not covered, and why: running the old services' whole request paths would mean starting
seven previous platforms (minutes, not seconds); the three checks above are what those paths
could meet in the schema (a SELECT or INSERT naming a column, a NOT NULL without the value),
at a few seconds per service. A changed CHECK constraint or a narrowed enum is not compared.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from common import registry
from common.db import connect
from common.testing.plugin import migrations_of

ROOT = Path(__file__).resolve().parents[2]
FreshDb = Callable[..., Awaitable[str]]

OLD_CODE = r"""
import asyncio, json, sys
from pathlib import Path

service, old_url, new_url, old_root = sys.argv[1:5]
pkg = __import__(service)
import common
for module in (pkg, common):
    assert module.__file__.startswith(old_root), f"{module.__name__} is today's: {module.__file__}"

import common.migrations_env as env

captured = []
original = env.run


def run(metadata=None):
    captured.append(metadata)
    original(metadata)


env.run = run  # the old env.py calls it with the metadata of every table it knows
from common.db import migrate

asyncio.run(migrate(Path(pkg.__file__).parent / "migrations", old_url))
(metadata,) = captured

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine


async def read_every_table():
    engine = create_async_engine(new_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    failed = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            try:
                await conn.execute(select(*table.columns).limit(1))
            except Exception as exc:
                failed[table.name] = str(exc).splitlines()[0]
                await conn.rollback()
    await engine.dispose()
    return failed


print(json.dumps({"tables": sorted(metadata.tables), "failed": asyncio.run(read_every_table())}))
"""

COLUMNS = """
SELECT table_name, column_name, data_type, character_maximum_length, is_nullable = 'YES',
       column_default IS NOT NULL OR is_identity = 'YES' OR is_generated <> 'NEVER'
FROM information_schema.columns WHERE table_schema = 'public'
"""


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout


def package_dir(service: str) -> str:
    return "gateway/gateway" if service == "gateway" else f"services/{service}/{service}"


def previous_release(service: str) -> tuple[str | None, str]:
    """(the last code without the service's newest migration, that migration's path).

    The commit before the one that added it, or, when that state was no release (a merge
    in progress left two heads or a revision since renumbered), the newest commit before it
    on the main line whose migrations are all among today's but the newest. None: no
    migration before the newest (the previous release had no database)."""
    folder = (migrations_of(service) / "versions").relative_to(ROOT).as_posix()
    today = {path.name for path in (ROOT / folder).glob("*.py")}
    newest = max(today)
    added = git("log", "--diff-filter=A", "--format=%H", "-1", "--", f"{folder}/{newest}").decode().strip()
    assert added, f"{folder}/{newest} is in no commit: commit it (this test reads the history)"
    earlier = git("rev-list", "--first-parent", f"{added}^", "--", folder).decode().split()
    for rev in [f"{added}^", *earlier]:
        names = set(git("ls-tree", "--name-only", rev, f"{folder}/").decode().split())
        names = {Path(name).name for name in names if name.endswith(".py")}
        if names and names <= today - {newest}:
            return rev, f"{folder}/{newest}"
    return None, f"{folder}/{newest}"


def check_out(rev: str, paths: list[str], into: Path) -> list[str]:
    """The paths as they were at ``rev`` (those that existed), under ``into``."""
    present = [p for p in paths if git("ls-tree", "--name-only", rev, p).strip()]
    if present:
        archive = git("archive", "--format=tar", rev, *present)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(into, filter="data")
    return present


async def columns(url: str) -> dict[tuple[str, str], tuple[str, int | None, bool, bool]]:
    conn = await connect(url)
    try:
        return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in await conn.fetch(COLUMNS)}
    finally:
        await conn.close()


@pytest.mark.parametrize("service", [*registry.NAMES, "gateway"])
async def test_the_previous_release_works_on_the_newest_schema(
    service: str, fresh_db: FreshDb, tmp_path: Path
) -> None:
    rev, newest = previous_release(service)
    if rev is None:
        # The previous release had no database for this service: nothing it could read.
        assert newest.endswith("0001_initial.py"), f"{service}: no release before {newest}?"
        return
    old_root = tmp_path / "previous"
    check_out(rev, [package_dir(service), "libs/common/common"], old_root)

    new_url = await fresh_db(f"new{service}", schema=service)
    old_url = await fresh_db(f"old{service}")
    script = tmp_path / "old_code.py"
    script.write_text(OLD_CODE)
    paths = [str(old_root / "libs/common"), str(old_root / Path(package_dir(service)).parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "ENVIRONMENT": "development"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), service, old_url, new_url, str(old_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tables"], f"{service}: the previous release's env.py named no table"
    assert result["failed"] == {}, (
        f"{service} at {rev} cannot read these tables on the schema {newest} makes "
        f"(a drop or rename before the contract step): {result['failed']}"
    )

    old, new = await columns(old_url), await columns(new_url)
    broken = []
    for key, (kind, length, nullable, _defaulted) in old.items():
        if key not in new:
            broken.append(f"{key[0]}.{key[1]} dropped or renamed")
            continue
        new_kind, new_length, new_nullable, new_defaulted = new[key]
        if (new_kind, new_length) != (kind, length) and not (
            kind == new_kind and new_length is not None and length is not None and new_length > length
        ):
            broken.append(f"{key[0]}.{key[1]} changed type {kind}({length}) -> {new_kind}({new_length})")
        if nullable and not new_nullable and not new_defaulted:
            broken.append(f"{key[0]}.{key[1]} made NOT NULL without a default")
    old_tables = {table for table, _ in old}
    for (table, column), (_kind, _length, nullable, defaulted) in new.items():
        if table in old_tables and (table, column) not in old and not (nullable or defaulted):
            broken.append(f"{table}.{column} added NOT NULL without a default")
    assert broken == [], (
        f"{newest} is not expand-only: the previous release ({rev}) breaks on {broken} "
        "(CONTRIBUTING, Migrations: add nullable or with a default, drop in a later release)"
    )
