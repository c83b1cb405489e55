"""what orders knows of a request to end a signed order: a termination being decided (the
order frozen), and why the last request was refused

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("cancel_refused_reason", sa.Text(), nullable=True))
    op.add_column(
        "orders", sa.Column("termination_pending", sa.Boolean(), nullable=False, server_default="false")
    )
    op.add_column("orders", sa.Column("termination_request_id", sa.String(36), nullable=True))


def downgrade() -> None:
    for name in ("termination_request_id", "termination_pending", "cancel_refused_reason"):
        op.drop_column("orders", name)
