"""the termination payments decides (who asked, when it was accepted), what orders announced of
the service, and which claim each document backs (a file backs one claim)

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

PLAN_COLUMNS = (
    ("termination_request_id", lambda: sa.String(36)),
    ("terminated_at", lambda: sa.DateTime(timezone=True)),
    ("service_started_at", lambda: sa.DateTime(timezone=True)),
    ("service_completed_at", lambda: sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, kind in PLAN_COLUMNS:
        op.add_column("payment_plans", sa.Column(name, kind(), nullable=True))
    op.create_table(
        "settlement_claim_files",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("claim_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("settlement_claim_files")
    for name, _kind in reversed(PLAN_COLUMNS):
        op.drop_column("payment_plans", name)
