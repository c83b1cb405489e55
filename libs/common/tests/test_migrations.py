"""Start-up on a schema newer than the code (issue 17, section 4): after the next release
migrated the database, `kubectl rollout undo` (or an older replica still rolling) starts the
previous release's code on it. Alembic cannot find the newer revision in the older code; the
expand/contract rule (CONTRIBUTING) guarantees that code still works on that schema, so the
service starts, saying so in a warning, instead of crash-looping."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import structlog
from alembic.script import ScriptDirectory

from common.app import ServiceRuntime
from common.bus.inprocess import InProcessTransport
from common.db import alembic_config, connect, migrate
from common.settings import ServiceSettings
from common.testing.plugin import migrations_of

FreshDb = Callable[..., Awaitable[str]]

NEXT_RELEASE = '''"""the next release: an expand-only change (a nullable column)"""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("demands", sa.Column("next_release_note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("demands", "next_release_note")
'''


class DemandsSettings(ServiceSettings):
    service_name: ClassVar[str] = "demands"


def next_release(tmp_path: Path) -> tuple[Path, str]:
    """demands' migrations as the next release has them: today's and one more on top."""
    ours = migrations_of("demands")
    theirs = tmp_path / "next-release-migrations"
    shutil.copytree(ours, theirs, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory.from_config(alembic_config(ours, "postgresql://unused/x")).get_current_head()
    (theirs / "versions" / "9001_next_release.py").write_text(NEXT_RELEASE.format(head=head))
    return theirs, str(head)


async def revision(url: str) -> str:
    conn = await connect(url)
    try:
        return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await conn.close()


async def test_the_previous_release_starts_on_a_schema_the_next_release_migrated(
    fresh_db: FreshDb, tmp_path: Path
) -> None:
    url = await fresh_db("newer", schema="demands")
    newer, head = next_release(tmp_path)
    await migrate(newer, url)
    assert await revision(url) == "9001"

    # The previous release (this code) starts with run_migrations=true, as make run and
    # compose do: no "Can't locate revision", a warning instead.
    settings = DemandsSettings(
        environment="development", database_url=url, bus_transport="inprocess", log_json=False
    )
    runtime = ServiceRuntime(
        settings, migrations_dir=migrations_of("demands"), transport=InProcessTransport()
    )
    try:
        with structlog.testing.capture_logs() as logs:
            await runtime.prepare()
        assert runtime.prepared
        assert await runtime.db.ping()
    finally:
        await runtime.stop()
    (warning,) = [e for e in logs if e["event"] == "schema_newer_than_code"]
    assert warning["log_level"] == "warning"
    assert warning["revision"] == "9001" and warning["head"] == head
    assert await revision(url) == "9001", "the newer schema is left as it is"


async def test_migrate_says_the_schema_is_newer_and_changes_nothing(
    fresh_db: FreshDb, tmp_path: Path
) -> None:
    url = await fresh_db("newer", schema="demands")
    newer, head = next_release(tmp_path)
    await migrate(newer, url)
    outcome = await migrate(migrations_of("demands"), url)
    assert outcome.newer_than_code
    assert (outcome.before, outcome.after, outcome.head) == ("9001", "9001", head)


async def test_migrate_brings_an_older_database_to_head_and_says_from_where(fresh_db: FreshDb) -> None:
    url = await fresh_db("older")
    folder = migrations_of("demands")
    first = await migrate(folder, url)
    head = ScriptDirectory.from_config(alembic_config(folder, url)).get_current_head()
    assert (first.before, first.after, first.head, first.newer_than_code) == (None, head, head, False)
    again = await migrate(folder, url)
    assert (again.before, again.after) == (head, head)
