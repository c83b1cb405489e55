"""orders's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

- ``orders``: the order with the snapshot of the product as catalog sold it at submission and
  of the two parties' contacts (双方接洽), the voucher's movements as quota announced them, the
  contract's amounts once signed and the money as payments announced it. Orders owns only
  ``status``; every other fact is a copy of what its owner published.
- ``order_steps``: the timeline (who did what, when).
- ``order_evaluations``: one per order (the primary key decides a double submission).
- ``order_product_copies``: catalog's last ``product_changed`` per product.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Text, func
from sqlmodel import Field, SQLModel


def _uuid() -> str:
    return str(uuid.uuid4())


def _ts(nullable: bool = True) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable, server_default=None if nullable else func.now())


def _fen(default: int = 0) -> Column:
    return Column(BigInteger, nullable=False, server_default=str(default))


def _flag() -> Column:
    return Column(Boolean, nullable=False, server_default="false")


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_enterprise", "enterprise_id", "created_at"),
        Index("ix_orders_provider", "provider_id", "created_at"),
        Index("ix_orders_status", "status"),
    )

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    order_no: str = Field(sa_column=Column(String(24), nullable=False, unique=True))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    enterprise_id: str = Field(max_length=36)
    enterprise_name: str = Field(default="", max_length=200)
    enterprise_user_id: str = Field(max_length=36)
    provider_id: str = Field(max_length=36)
    provider_name: str = Field(default="", max_length=200)
    # the product as catalog sold it at submission
    product_id: str = Field(max_length=36)
    product_name: str = Field(max_length=200)
    category: str = Field(max_length=40)
    voucher_type: str = Field(max_length=40)
    price_fen: int = Field(sa_column=_fen())  # 服务金额 at submission (平台销售价)
    market_price_fen: int = Field(default=0, sa_column=_fen())
    max_subsidy_fen: int = Field(default=0, sa_column=_fen())
    # the parties' contacts at submission (双方接洽; migration 0006, NULL on older orders): the
    # account that ordered as identity's token names it (its phone is the contact phone), and
    # the provider's contact and service hotline as catalog publishes them
    enterprise_contact_name: str | None = Field(default=None, sa_column=Column(String(100)))
    enterprise_contact_phone: str | None = Field(default=None, sa_column=Column(String(32)))
    provider_contact_name: str | None = Field(default=None, sa_column=Column(String(100)))
    provider_contact_phone: str | None = Field(default=None, sa_column=Column(String(32)))
    # the voucher: quota's quote at submission, then what quota reserved
    use_voucher: bool = Field(default=False, sa_column=_flag())
    voucher_id: str | None = Field(default=None, max_length=36)
    voucher_no: str | None = Field(default=None, max_length=24)
    quoted_subsidy_fen: int = Field(default=0, sa_column=_fen())
    subsidy_fen: int = Field(default=0, sa_column=_fen())
    ratio_bp: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # none | pending | reserved | rejected | released | committed | reversed | settled
    voucher_state: str = Field(default="none", sa_column=Column(String(16), nullable=False))
    committed_fen: int = Field(default=0, sa_column=_fen())
    released_fen: int = Field(default=0, sa_column=_fen())
    settled_fen: int = Field(default=0, sa_column=_fen())
    # the contract's state and who has signed, as contracts announced them (migration 0007;
    # NULL: nothing announced yet, a draft while awaiting the contract)
    contract_state: str | None = Field(default=None, sa_column=Column(String(16)))
    contract_enterprise_signed: bool = Field(default=False, sa_column=_flag())
    contract_provider_signed: bool = Field(default=False, sa_column=_flag())
    # the contract, once signed
    contract_id: str | None = Field(default=None, max_length=36)
    contract_total_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    contract_subsidy_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    contract_payable_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    deposit_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    balance_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    # the money, as payments announced it
    paid_fen: int = Field(default=0, sa_column=_fen())
    outstanding_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    deposit_met: bool = Field(default=False, sa_column=_flag())
    fully_paid: bool = Field(default=False, sa_column=_flag())
    # cancellation
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    cancelled_by: str | None = Field(default=None, max_length=20)
    cancel_requested_in: str | None = Field(default=None, sa_column=Column(String(32)))
    # why the last request to end the order was refused (contracts or payments said no)
    cancel_refused_reason: str | None = Field(default=None, sa_column=Column(Text))
    # a termination contracts asked payments to decide: the order is frozen meanwhile
    termination_pending: bool = Field(default=False, sa_column=_flag())
    termination_request_id: str | None = Field(default=None, max_length=36)
    # times
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_ts())
    accepted_at: datetime | None = Field(default=None, sa_column=_ts())
    signed_at: datetime | None = Field(default=None, sa_column=_ts())
    service_started_at: datetime | None = Field(default=None, sa_column=_ts())
    service_completed_at: datetime | None = Field(default=None, sa_column=_ts())
    completed_at: datetime | None = Field(default=None, sa_column=_ts())
    evaluated_at: datetime | None = Field(default=None, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts())

    # --- what the order shows, derived from the facts it holds ---------------------------
    @property
    def amount_fen(self) -> int:
        return self.price_fen

    @property
    def current_subsidy_fen(self) -> int:
        """The contract's subsidy once signed; before, quota's quote, then its reservation."""
        if self.contract_subsidy_fen is not None:
            return self.contract_subsidy_fen
        return self.subsidy_fen

    @property
    def payable_fen(self) -> int:
        if self.contract_payable_fen is not None:
            return self.contract_payable_fen
        return max(self.price_fen - self.subsidy_fen, 0)

    @property
    def enterprise_contact(self) -> Contact | None:
        return Contact.of(self.enterprise_contact_name, self.enterprise_contact_phone)

    @property
    def provider_contact(self) -> Contact | None:
        return Contact.of(self.provider_contact_name, self.provider_contact_phone)


@dataclass(frozen=True)
class Contact:
    """A party's contact kept on an order: None when the order knows neither its name nor phone."""

    name: str | None
    phone: str | None

    @classmethod
    def of(cls, name: str | None, phone: str | None) -> Contact | None:
        return cls(name, phone) if name or phone else None


class OrderStep(SQLModel, table=True):
    """One line of the order's timeline."""

    __tablename__ = "order_steps"
    __table_args__ = (Index("ix_order_steps_order", "order_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    order_id: str = Field(max_length=36)
    step: str = Field(max_length=40)  # stable code
    label: str = Field(max_length=100)  # what the manual shows
    actor: str = Field(max_length=20)  # enterprise | provider | staff | system
    actor_id: str | None = Field(default=None, max_length=64)  # the user, or the service
    detail: str | None = Field(default=None, sa_column=Column(Text))
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    ref: str | None = Field(default=None, max_length=64)  # the fact it records (a remittance id...)
    at: datetime | None = Field(default=None, sa_column=_ts(nullable=False))


class OrderEvaluation(SQLModel, table=True):
    __tablename__ = "order_evaluations"

    order_id: str = Field(primary_key=True, max_length=36)
    rating: int = Field(sa_column=Column(Integer, nullable=False))
    content: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    user_id: str = Field(max_length=36)
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False))


class ProductCopy(SQLModel, table=True):
    """Catalog's last announced snapshot of a product (``catalog.product_changed``)."""

    __tablename__ = "order_product_copies"

    product_id: str = Field(primary_key=True, max_length=36)
    provider_id: str = Field(max_length=36)
    name: str = Field(max_length=200)
    category: str = Field(max_length=40)
    price_fen: int = Field(sa_column=_fen())
    max_subsidy_fen: int = Field(sa_column=_fen())
    listed: bool = Field(default=False, sa_column=_flag())
    status: str = Field(max_length=20)
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False))
    # the provider as the product shows it (migration 0008; NULL on copies made before)
    provider_name: str | None = Field(default=None, max_length=200)
    provider_contact_name: str | None = Field(default=None, max_length=100)
    provider_contact_phone: str | None = Field(default=None, max_length=32)
    market_price_fen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
