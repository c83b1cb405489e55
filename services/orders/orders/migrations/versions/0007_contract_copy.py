"""the contract's state and signatures as contracts announces them (issue 15: an order row
offers the contract's buttons, 查看合同 / 同意 / 退回修改 / 签署, without a call per row).

An order signed before keeps what orders already knew: signed (both parties), terminating
while a termination is pending, terminated. An order awaiting its contract cannot know
how far the contract got: NULL, read as a draft until contracts' next event says more.

Revision ID: 0007_contract_copy
Revises: 0006_order_contacts
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_contract_copy"
down_revision: str | None = "0006_order_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("contract_enterprise_signed", "contract_provider_signed")


def upgrade() -> None:
    op.add_column("orders", sa.Column("contract_state", sa.String(16), nullable=True))
    for name in FLAGS:
        op.add_column("orders", sa.Column(name, sa.Boolean(), nullable=False, server_default="false"))
    op.execute(
        "UPDATE orders SET contract_state = CASE "
        "WHEN status = 'terminated' THEN 'terminated' "
        "WHEN termination_pending THEN 'terminating' "
        "ELSE 'signed' END, "
        "contract_enterprise_signed = true, contract_provider_signed = true "
        "WHERE contract_id IS NOT NULL"
    )
    op.execute(
        "UPDATE orders SET contract_state = 'voided' "
        "WHERE contract_id IS NULL AND status = 'cancelled' AND accepted_at IS NOT NULL"
    )


def downgrade() -> None:
    for name in reversed(FLAGS):
        op.drop_column("orders", name)
    op.drop_column("orders", "contract_state")
