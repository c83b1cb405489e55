"""the revoked tokens (common.access): identity's user_access_changed, kept for every replica

Revision ID: 0004_access_revocations
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

from alembic import op

from common.access import create_access_schema

revision: str = "0004_access_revocations"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_access_schema(op.get_bind())


def downgrade() -> None:
    op.drop_table("access_revocations")
