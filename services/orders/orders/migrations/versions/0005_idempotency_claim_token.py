"""idempotency keys: the token of the claim holding a key (issue 12, F7), so that a command
that outlived its lease can neither store its response over the retry's that took the key
over nor give that claim away

Revision ID: 0005_idempotency_claim_token
Revises: 0004_access_revocations
Create Date: 2026-12-06 02:00:00
"""

from collections.abc import Sequence

from alembic import op

from common.tables import add_idempotency_token

revision: str = "0005_idempotency_claim_token"
down_revision: str | None = "0004_access_revocations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_idempotency_token(op.get_bind())  # a database made since 0001 has it already


def downgrade() -> None:
    op.drop_column("idempotency_keys", "token")
