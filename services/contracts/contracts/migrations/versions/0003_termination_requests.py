"""the termination asked of payments and orders: who asked, when and why, who agreed, and the
refusal

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


COLUMNS = (
    ("termination_request_id", lambda: sa.String(36)),
    ("termination_requested_at", lambda: sa.DateTime(timezone=True)),
    ("termination_requested_by", lambda: sa.String(20)),
    ("termination_request_reason", sa.Text),
    ("termination_payments_agreed", sa.Boolean),
    ("termination_orders_agreed", sa.Boolean),
    ("termination_refused_at", lambda: sa.DateTime(timezone=True)),
    ("termination_refused_reason", sa.Text),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        flag = kind is sa.Boolean
        op.add_column(
            "contracts",
            sa.Column(name, kind(), nullable=not flag, server_default="false" if flag else None),
        )


def downgrade() -> None:
    for name, _kind in reversed(COLUMNS):
        op.drop_column("contracts", name)
