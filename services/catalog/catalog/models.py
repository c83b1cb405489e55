"""catalog's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

- ``provider_applications``: 申请入驻平台, one row per application (a rejected one may be made
  again; at most one pending per organisation, decided by a partial unique index);
- ``providers``: 服务机构信息 of an approved provider (its existence is what catalog checks
  before a provider may create or submit products, not only the token's capability);
- ``products``: 服务产品 with their review state, the snapshot last approved (a relist of an
  unchanged product needs no review), and the counters the listing sorts by;
- ``catalog_order_facts``: what catalog has seen of each order (its product, signed, its
  total, completed, rating): contract_signed names no product, so the order's row maps it;
  the flags make every counter move once per order whatever is delivered twice;
- ``favorites``: 我的收藏, one row per (user, product).

Sales (销量) count signed contracts, revenue (销售额) their contract totals, and 申请次数 the
orders submitted for the product.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from common.audit import AuditEntry  # noqa: F401 - catalog's audit log is the common one

# What the keyword search reads: two columns PostgreSQL generates from the name and the
# description (migration 0003), with their GIN indexes (pg_trgm on the lowered text; the
# array of its 2-character substrings). Deliberately not mapped: the ORM never loads them
# with a product (the array of a long description is large) nor tries to write them.
SEARCH_TEXT = literal_column("products.search_text", Text)
SEARCH_BIGRAMS = literal_column("products.search_bigrams", ARRAY(Text))


def new_id() -> str:
    return str(uuid.uuid4())


def ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if default_now else None
    )


def json_list() -> Any:
    return Column(JSONB, nullable=False, server_default="[]")


def counter(big: bool = False) -> Any:
    return Column(BigInteger if big else Integer, nullable=False, server_default="0")


class ProviderApplication(SQLModel, table=True):
    __tablename__ = "provider_applications"
    __table_args__ = (
        Index(
            "uq_provider_applications_pending",
            "org_id",
            unique=True,
            postgresql_where=text("state = 'pending_review'"),
        ),
        Index("ix_provider_applications_state", "state", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    org_id: str = Field(max_length=36, index=True)
    org_name: str = Field(default="", max_length=200)
    applicant_id: str = Field(max_length=36)
    profile: str = Field(sa_column=Column(Text, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=json_list())
    contact_name: str = Field(max_length=50)
    contact_phone: str = Field(max_length=20)
    address: str = Field(max_length=200)
    working_hours: str = Field(max_length=100)
    proof_file_ids: list[str] = Field(default_factory=list, sa_column=json_list())
    state: str = Field(default="pending_review", max_length=20)  # pending_review | approved | rejected
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    decided_by: str | None = Field(default=None, max_length=36)
    decided_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Provider(SQLModel, table=True):
    __tablename__ = "providers"

    org_id: str = Field(primary_key=True, max_length=36)
    name: str = Field(default="", max_length=200)
    profile: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    categories: list[str] = Field(default_factory=list, sa_column=json_list())
    contact_name: str = Field(default="", max_length=50)
    # 服务电话, the provider's published service hotline: public, unmasked (schemas.listing)
    contact_phone: str = Field(default="", max_length=20)
    address: str = Field(default="", max_length=200)
    working_hours: str = Field(default="", max_length=100)
    application_id: str | None = Field(default=None, max_length=36)
    approved_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Product(SQLModel, table=True):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("platform_price_fen > 0", name="ck_products_price_positive"),
        CheckConstraint("platform_price_fen <= market_price_fen", name="ck_products_price_le_market"),
        CheckConstraint("max_subsidy_fen >= 0", name="ck_products_max_subsidy"),
        Index("ix_products_provider_status", "provider_id", "status"),
        Index("ix_products_listed_category", "category", postgresql_where=text("status = 'listed'")),
        Index(
            "ix_products_listed_price", "platform_price_fen", "id", postgresql_where=text("status = 'listed'")
        ),
        Index("ix_products_listed_sales", "sales", "id", postgresql_where=text("status = 'listed'")),
        Index("ix_products_listed_revenue", "revenue_fen", "id", postgresql_where=text("status = 'listed'")),
        Index("ix_products_listed_at", "listed_at", "id", postgresql_where=text("status = 'listed'")),
        Index("ix_products_status_submitted", "status", "submitted_at"),
        # Chinese substrings (pg_trgm): ILIKE '%关键字%' on the name and the description.
        Index(
            "ix_products_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
        Index(
            "ix_products_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    provider_id: str = Field(max_length=36)
    name: str = Field(max_length=100)
    category: str = Field(max_length=20)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    deliverables: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    acceptance_criteria: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    market_price_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    platform_price_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_subsidy_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    # draft | pending_review | rejected | listed | unlisted
    status: str = Field(default="draft", max_length=20)
    review_flags: list[dict[str, str]] = Field(default_factory=list, sa_column=json_list())
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    # What the reviewer last approved: a relist with the same figures needs no new review.
    approved_snapshot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    visits: int = Field(default=0, sa_column=counter(True))
    applications: int = Field(default=0, sa_column=counter())
    sales: int = Field(default=0, sa_column=counter())
    revenue_fen: int = Field(default=0, sa_column=counter(True))
    completed: int = Field(default=0, sa_column=counter())
    rating_sum: int = Field(default=0, sa_column=counter())
    rating_count: int = Field(default=0, sa_column=counter())
    submitted_at: datetime | None = Field(default=None, sa_column=ts())
    listed_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))

    @property
    def rating(self) -> float | None:
        if not self.rating_count:
            return None
        return round(self.rating_sum / self.rating_count, 1)


class OrderFact(SQLModel, table=True):
    __tablename__ = "catalog_order_facts"

    order_id: str = Field(primary_key=True, max_length=36)
    product_id: str = Field(max_length=36, index=True)
    provider_id: str = Field(max_length=36)
    submitted: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    signed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    total_fen: int = Field(default=0, sa_column=counter(True))
    completed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    rating: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Favorite(SQLModel, table=True):
    __tablename__ = "favorites"

    user_id: str = Field(primary_key=True, max_length=36)
    product_id: str = Field(primary_key=True, max_length=36, index=True)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
