"""the provider on orders' copy of a product (issue 16): name, contact and hotline as catalog
publishes them with ``catalog.product_changed``, and the market price, so an order is made
from the copy without a call to catalog per submission. NULL on copies made before: such a
copy is not sold from until catalog's next event for the product fills it (orders asks
catalog meanwhile, as before).

Revision ID: 0008_product_copy_provider
Revises: 0007_contract_copy
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_product_copy_provider"
down_revision: str | None = "0007_contract_copy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("provider_name", sa.String(200)),
    ("provider_contact_name", sa.String(100)),
    ("provider_contact_phone", sa.String(32)),
    ("market_price_fen", sa.BigInteger()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("order_product_copies", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("order_product_copies", name)
