"""initial schema: the common tables (outbox, inbox, timers, sequences, ordering guard,
idempotency keys), the audit log, the organisation copies, the revoked tokens

Revision ID: 0001
Revises:
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

from alembic import op

from common.access import create_access_schema
from common.audit import create_audit_schema
from common.orgs import create_org_copy_schema
from common.tables import create_common_schema, drop_common_schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    create_common_schema(bind)
    create_audit_schema(bind)
    create_org_copy_schema(bind)
    create_access_schema(bind)


def downgrade() -> None:
    op.drop_table("access_revocations")
    op.drop_table("org_copies")
    op.drop_table("audit_log")
    drop_common_schema(op.get_bind())
