"""listing search and counts that stay fast at 10,000 products

- ``search_text``: lower(name || ' ' || description), stored, with a GIN trigram index: one
  index for a keyword of 3 characters or more (LIKE '%关键字%' on the lowered text matches
  what ILIKE over name and description would);
- ``search_bigrams``: every 2-character substring of the same text, stored, with a GIN
  index: pg_trgm extracts no trigram from a 2-character pattern (and two characters is what
  many Chinese keywords are: 专利, 诊断), so those use ``@> ARRAY['专利']`` instead, which is
  exactly "contains the substring";
- partial indexes on the listed products' provider (and category) so the listing's total is
  an index-only count.

The separate trigram indexes on name and description give way to the combined one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = "lower((name)::text || ' ' || description)"


def upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION catalog_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE"
        " AS $$ SELECT coalesce(array_agg(DISTINCT substr(t, i, 2)), '{}')"
        " FROM generate_series(1, length(t) - 1) AS i $$"
    )
    op.execute(f"ALTER TABLE products ADD COLUMN search_text text GENERATED ALWAYS AS ({SEARCHED}) STORED")
    op.execute(
        "ALTER TABLE products ADD COLUMN search_bigrams text[]"
        f" GENERATED ALWAYS AS (catalog_bigrams({SEARCHED})) STORED"
    )
    op.drop_index("ix_products_name_trgm", table_name="products")
    op.drop_index("ix_products_description_trgm", table_name="products")
    op.execute("CREATE INDEX ix_products_search_trgm ON products USING gin (search_text gin_trgm_ops)")
    op.execute("CREATE INDEX ix_products_search_bigrams ON products USING gin (search_bigrams)")
    op.execute("CREATE INDEX ix_products_listed_provider ON products (provider_id) WHERE status = 'listed'")
    op.execute(
        "CREATE INDEX ix_products_listed_category_provider ON products (category, provider_id)"
        " WHERE status = 'listed'"
    )


def downgrade() -> None:
    for index in (
        "ix_products_listed_category_provider",
        "ix_products_listed_provider",
        "ix_products_search_bigrams",
        "ix_products_search_trgm",
    ):
        op.drop_index(index, table_name="products")
    op.drop_column("products", "search_bigrams")
    op.drop_column("products", "search_text")
    op.execute("DROP FUNCTION IF EXISTS catalog_bigrams(text)")
    op.execute("CREATE INDEX ix_products_name_trgm ON products USING gin (name gin_trgm_ops)")
    op.execute("CREATE INDEX ix_products_description_trgm ON products USING gin (description gin_trgm_ops)")
