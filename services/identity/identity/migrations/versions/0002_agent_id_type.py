"""agents: the kind of their ID number

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("id_type", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "id_type")
