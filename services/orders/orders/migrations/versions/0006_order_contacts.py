"""the two parties' contacts on an order, kept at submission (issue 13, 双方接洽): the
enterprise's (the account that ordered) and the provider's (its contact and service hotline).
Nullable: an order submitted before has none, and shows none.

Revision ID: 0006_order_contacts
Revises: 0005_idempotency_claim_token
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_order_contacts"
down_revision: str | None = "0005_idempotency_claim_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("enterprise_contact_name", 100),
    ("enterprise_contact_phone", 32),
    ("provider_contact_name", 100),
    ("provider_contact_phone", 32),
)


def upgrade() -> None:
    for name, length in COLUMNS:
        op.add_column("orders", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    for name, _length in reversed(COLUMNS):
        op.drop_column("orders", name)
