"""provider applications awaiting review say pending_review, the word quota's applications
use for the same idea (issue 15, one vocabulary): the stored rows are rewritten and the
partial unique index (at most one awaiting review per organisation) follows the new word

Revision ID: 0006_pending_review
Revises: 0005_idempotency_claim_token
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_pending_review"
down_revision: str | None = "0005_idempotency_claim_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_provider_applications_pending"


def _swap(old: str, new: str) -> None:
    op.drop_index(INDEX, table_name="provider_applications")
    op.execute(
        sa.text("UPDATE provider_applications SET state = :new WHERE state = :old").bindparams(
            old=old, new=new
        )
    )
    op.create_index(
        INDEX, "provider_applications", ["org_id"], unique=True, postgresql_where=sa.text(f"state = '{new}'")
    )


def upgrade() -> None:
    _swap("pending", "pending_review")


def downgrade() -> None:
    _swap("pending_review", "pending")
