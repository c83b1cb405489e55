"""vouchers carry the enterprise's name (issue 15, names on staff lists): copied from the
application when the voucher is issued; a voucher issued before takes it from the latest of
its enterprise's applications that has one, else from quota's organisation copy

Revision ID: 0005_voucher_enterprise_name
Revises: 0004_idempotency_claim_token
Create Date: 2026-12-06 16:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_voucher_enterprise_name"
down_revision: str | None = "0004_idempotency_claim_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0002 creates the tables from the models as they are now: a database made since has it.
    op.execute("ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS enterprise_name text NOT NULL DEFAULT ''")
    op.execute(
        """
        UPDATE vouchers v SET enterprise_name = a.enterprise_name
        FROM (
            SELECT DISTINCT ON (enterprise_id) enterprise_id, enterprise_name
            FROM quota_applications WHERE enterprise_name <> ''
            ORDER BY enterprise_id, created_at DESC
        ) a
        WHERE a.enterprise_id = v.enterprise_id
        """
    )
    op.execute(
        "UPDATE vouchers v SET enterprise_name = o.name FROM org_copies o"
        " WHERE o.org_id = v.enterprise_id AND v.enterprise_name = '' AND o.name <> ''"
    )


def downgrade() -> None:
    op.drop_column("vouchers", "enterprise_name")
