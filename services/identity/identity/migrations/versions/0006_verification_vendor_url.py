"""identity verifications: the vendor's page (so a client that reloads can show the link and QR
code again) and the digest of the person a check was started for (Aliyun's result does not
name the person; issue 15)

Revision ID: 0006_verification_vendor_url
Revises: 0005_idempotency_claim_token
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy
import sqlmodel
from alembic import op

revision: str = "0006_verification_vendor_url"
down_revision: str | None = "0005_idempotency_claim_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "identity_verifications",
        sqlalchemy.Column("vendor_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    )
    op.add_column(
        "identity_verifications",
        sqlalchemy.Column("subject_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("identity_verifications", "subject_digest")
    op.drop_column("identity_verifications", "vendor_url")
