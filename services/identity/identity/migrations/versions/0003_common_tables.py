"""the common tables added since 0001: the ordering guard, idempotency keys; the audit index;
the outbox's batch, aggregate and retention indexes (replacing ix_outbox_pending), the inbox's
retention index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from common.tables import create_common_schema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_common_schema(op.get_bind())  # creates only the tables that are missing
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    # Indexes of tables 0001 made: what create_common_schema makes for a new service.
    op.drop_index("ix_outbox_pending", table_name="outbox", if_exists=True)
    op.create_index(
        "ix_outbox_next",
        "outbox",
        ["created_at", "sequence", "id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_outbox_aggregate_pending",
        "outbox",
        ["aggregate_id", "created_at", "sequence"],
        postgresql_where=sa.text("sent_at IS NULL"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_outbox_sent",
        "outbox",
        ["sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        if_not_exists=True,
    )
    op.create_index("ix_inbox_received", "inbox", ["received_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_inbox_received", table_name="inbox")
    op.drop_index("ix_outbox_sent", table_name="outbox")
    op.drop_index("ix_outbox_aggregate_pending", table_name="outbox")
    op.drop_index("ix_outbox_next", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at", "created_at"],
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("idempotency_keys")
    op.drop_table("event_order")
