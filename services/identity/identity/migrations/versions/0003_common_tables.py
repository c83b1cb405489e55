"""the common tables added since 0001: the ordering guard, idempotency keys; the audit index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

from alembic import op

from common.tables import create_common_schema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_common_schema(op.get_bind())  # creates only what is missing
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("idempotency_keys")
    op.drop_table("event_order")
