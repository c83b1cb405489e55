"""names on finance's lists (issue 15): the enterprise's, the provider's and the product's
names copied onto the payment plan when the contract's signing arrives, and from the plan
onto each remittance (with the order number), settlement claim and refund when it is made,
so a staff list shows names without asking anyone per row

Rows made before this migration: the parties' names come from the organisation copies
payments already keeps (identity's events), the product's name stays empty (the portal then
shows the order number).

Revision ID: 0006_names_on_rows
Revises: 0005_idempotency_claim_token
Create Date: 2026-12-06 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_names_on_rows"
down_revision: str | None = "0005_idempotency_claim_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("payment_plans", "remittances", "settlement_claims", "payment_refunds")
NAMES = ("enterprise_name", "provider_name", "product_name")


def upgrade() -> None:
    for table in TABLES:
        for name in NAMES:
            op.add_column(table, sa.Column(name, sa.String(length=200), server_default="", nullable=False))
    op.add_column(
        "remittances", sa.Column("order_no", sa.String(length=40), server_default="", nullable=False)
    )
    op.execute(
        "UPDATE payment_plans p SET enterprise_name = o.name FROM org_copies o WHERE o.org_id = p.enterprise_id"
    )
    op.execute(
        "UPDATE payment_plans p SET provider_name = o.name FROM org_copies o WHERE o.org_id = p.provider_id"
    )
    for table in ("remittances", "settlement_claims", "payment_refunds"):
        op.execute(
            f"UPDATE {table} t SET enterprise_name = p.enterprise_name, provider_name = p.provider_name,"
            f" product_name = p.product_name FROM payment_plans p WHERE p.order_id = t.order_id"
        )
    op.execute(
        "UPDATE remittances t SET order_no = p.order_no FROM payment_plans p WHERE p.order_id = t.order_id"
    )


def downgrade() -> None:
    op.drop_column("remittances", "order_no")
    for table in TABLES:
        for name in NAMES:
            op.drop_column(table, name)
