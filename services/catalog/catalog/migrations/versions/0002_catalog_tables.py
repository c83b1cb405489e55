"""catalog's tables: provider applications, providers, products (with pg_trgm indexes for
Chinese substring search on name and description), order facts, favourites

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:05:23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ILIKE '%关键字%' over name and description uses GIN trigram indexes.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "catalog_order_facts",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("submitted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("signed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("total_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index(
        op.f("ix_catalog_order_facts_product_id"), "catalog_order_facts", ["product_id"], unique=False
    )
    op.create_table(
        "favorites",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "product_id"),
    )
    op.create_index(op.f("ix_favorites_product_id"), "favorites", ["product_id"], unique=False)
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("deliverables", sa.Text(), server_default="", nullable=False),
        sa.Column("acceptance_criteria", sa.Text(), server_default="", nullable=False),
        sa.Column("market_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("platform_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_subsidy_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "review_flags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("approved_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("visits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("applications", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sales", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revenue_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rating_sum", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rating_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("max_subsidy_fen >= 0", name="ck_products_max_subsidy"),
        sa.CheckConstraint("platform_price_fen <= market_price_fen", name="ck_products_price_le_market"),
        sa.CheckConstraint("platform_price_fen > 0", name="ck_products_price_positive"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_products_description_trgm",
        "products",
        ["description"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"description": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_products_listed_at",
        "products",
        ["listed_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'listed'"),
    )
    op.create_index(
        "ix_products_listed_category",
        "products",
        ["category"],
        unique=False,
        postgresql_where=sa.text("status = 'listed'"),
    )
    op.create_index(
        "ix_products_listed_price",
        "products",
        ["platform_price_fen", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'listed'"),
    )
    op.create_index(
        "ix_products_listed_revenue",
        "products",
        ["revenue_fen", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'listed'"),
    )
    op.create_index(
        "ix_products_listed_sales",
        "products",
        ["sales", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'listed'"),
    )
    op.create_index(
        "ix_products_name_trgm",
        "products",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_products_provider_status", "products", ["provider_id", "status"], unique=False)
    op.create_index("ix_products_status_submitted", "products", ["status", "submitted_at"], unique=False)
    op.create_table(
        "provider_applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("org_name", sa.String(length=200), nullable=False),
        sa.Column("applicant_id", sa.String(length=36), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("categories", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("contact_name", sa.String(length=50), nullable=False),
        sa.Column("contact_phone", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("working_hours", sa.String(length=100), nullable=False),
        sa.Column(
            "proof_file_ids", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_provider_applications_org_id"), "provider_applications", ["org_id"], unique=False
    )
    op.create_index(
        "ix_provider_applications_state", "provider_applications", ["state", "created_at"], unique=False
    )
    op.create_index(
        "uq_provider_applications_pending",
        "provider_applications",
        ["org_id"],
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "providers",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("profile", sa.Text(), server_default="", nullable=False),
        sa.Column("categories", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("contact_name", sa.String(length=50), nullable=False),
        sa.Column("contact_phone", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("working_hours", sa.String(length=100), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )


def downgrade() -> None:
    for table in ("providers", "provider_applications", "products", "favorites", "catalog_order_facts"):
        op.drop_table(table)
