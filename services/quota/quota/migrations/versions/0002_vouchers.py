"""campaigns, designations, applications, vouchers, reservations, the movement journal and the
providers' subsidy caps

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:20:00
"""

from collections.abc import Sequence

from alembic import op
from sqlmodel import SQLModel

from quota.models import (
    Campaign,
    CampaignType,
    Designation,
    Movement,
    ProviderCap,
    QuotaApplication,
    Reservation,
    Voucher,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables as this revision defines them (with their CHECK constraints and indexes); a later
# change to a model comes with its own revision.
TABLES = (Campaign, CampaignType, Designation, QuotaApplication, Voucher, Reservation, Movement, ProviderCap)


def upgrade() -> None:
    bind = op.get_bind()
    for model in TABLES:
        SQLModel.metadata.tables[str(model.__tablename__)].create(bind=bind, checkfirst=True)
    # The journal is append-only: no role of the service may change or delete a movement.
    op.execute(
        """
        CREATE FUNCTION voucher_movements_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'voucher_movements is append-only'; END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER voucher_movements_append_only BEFORE UPDATE OR DELETE ON voucher_movements "
        "FOR EACH ROW EXECUTE FUNCTION voucher_movements_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS voucher_movements_append_only ON voucher_movements")
    op.execute("DROP FUNCTION IF EXISTS voucher_movements_append_only()")
    for model in reversed(TABLES):
        op.drop_table(model.__tablename__)
