"""contracts, their versions, what contracts knows of each order, seals, signatures, signed
documents, spent verification tokens, the development signing CA

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None
    )


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), nullable=False, unique=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("enterprise_id", sa.String(36), nullable=False, index=True),
        sa.Column("enterprise_name", sa.String(200), nullable=False),
        sa.Column("provider_id", sa.String(36), nullable=False, index=True),
        sa.Column("provider_name", sa.String(200), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        _fen("price_fen"),
        _fen("reserved_fen"),
        sa.Column("ratio_bp", sa.Integer(), nullable=False, server_default="0"),
        _fen("max_subsidy_fen"),
        sa.Column("voucher_id", sa.String(36), nullable=True),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("terms_set", sa.Boolean(), nullable=False, server_default="false"),
        _fen("total_fen"),
        _fen("subsidy_fen"),
        _fen("payable_fen"),
        _fen("deposit_fen"),
        _fen("balance_fen"),
        sa.Column("terms", sa.Text(), nullable=False, server_default=""),
        sa.Column("return_reason", sa.Text(), nullable=True),
        _ts("submitted_at"),
        _ts("agreed_at"),
        _ts("signed_at"),
        _ts("voided_at"),
        sa.Column("void_reason", sa.Text(), nullable=True),
        _ts("terminated_at"),
        sa.Column("terminate_reason", sa.Text(), nullable=True),
        sa.Column("terminated_by", sa.String(20), nullable=True),
        sa.Column("document_sha256", sa.String(64), nullable=True),
        _ts("created_at", False, True),
        _ts("updated_at", False, True),
    )
    op.create_table(
        "contract_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contract_id", sa.String(36), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fen("total_fen"),
        _fen("subsidy_fen"),
        _fen("payable_fen"),
        _fen("deposit_fen"),
        _fen("balance_fen"),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("submitted_by", sa.String(36), nullable=False),
        _ts("submitted_at", False, True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        _ts("returned_at"),
        _ts("agreed_at"),
        sa.UniqueConstraint("contract_id", "version", name="uq_contract_versions_version"),
    )
    op.create_table(
        "contract_order_facts",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("cancelled", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("void_requested", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        _fen("paid_fen"),
        sa.Column("settlement_paid", sa.Boolean(), nullable=False, server_default="false"),
        _ts("updated_at", False, True),
    )
    op.create_table(
        "seals",
        sa.Column("org_id", sa.String(36), primary_key=True),
        sa.Column("org_name", sa.String(200), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("private_key_enc", sa.Text(), nullable=False),
        sa.Column("certificate_serial", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        _ts("created_at", False, True),
    )
    op.create_table(
        "contract_signatures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contract_id", sa.String(36), nullable=False, index=True),
        sa.Column("party", sa.String(20), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("signed_sha256", sa.String(64), nullable=False),
        sa.Column("verification_jti", sa.String(64), nullable=False),
        _ts("signed_at", False, True),
        sa.UniqueConstraint("contract_id", "party", name="uq_contract_signatures_party"),
    )
    op.create_table(
        "contract_documents",
        sa.Column("contract_id", sa.String(36), primary_key=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _ts("updated_at", False, True),
    )
    op.create_table(
        "used_verifications",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=True),
        _ts("used_at", False, True),
    )
    op.create_table(
        "contract_signing_ca",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_enc", sa.Text(), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        _ts("created_at", False, True),
    )


def downgrade() -> None:
    for table in (
        "contract_signing_ca",
        "used_verifications",
        "contract_documents",
        "contract_signatures",
        "seals",
        "contract_order_facts",
        "contract_versions",
        "contracts",
    ):
        op.drop_table(table)
