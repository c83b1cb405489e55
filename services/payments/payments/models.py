"""payments's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

The plan row (one per order, keyed by the order id) is the aggregate: every route, handler
and timer that moves its money locks it first (``common.db.lock``). Its CHECK constraints
are the last word on the money: ``paid + pending <= payable`` whatever a bug elsewhere does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from common.audit import AuditEntry  # noqa: F401 - payments' audit log is the common one
from common.orgs import OrgCopy  # noqa: F401 - the organisation copies


def new_id() -> str:
    return str(uuid.uuid4())


def ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if default_now else None
    )


def fen(*, default: int | None = None) -> Any:
    return Column(BigInteger, nullable=False, server_default=None if default is None else str(default))


def name_column() -> Any:
    return Column(String(200), nullable=False, server_default="")


def file_ids() -> Any:
    return Column(JSONB, nullable=False, server_default="[]")


class Payee(SQLModel, table=True):
    """A provider's receiving account (收款账户) as identity last announced it."""

    __tablename__ = "payment_payees"

    org_id: str = Field(primary_key=True, max_length=64)
    account_name: str = Field(default="", max_length=200)
    bank_name: str = Field(default="", max_length=100)
    bank_region: str = Field(default="", max_length=100)
    branch_name: str = Field(default="", max_length=200)
    account_number: str = Field(default="", max_length=40)
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class PaymentPlan(SQLModel, table=True):
    """What the enterprise pays the provider for one signed contract (the order's aggregate)."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        CheckConstraint("paid_fen >= 0 AND pending_fen >= 0", name="ck_payment_plans_nonnegative"),
        CheckConstraint("paid_fen + pending_fen <= payable_fen", name="ck_payment_plans_within_payable"),
        CheckConstraint("deposit_fen + balance_fen = payable_fen", name="ck_payment_plans_stages"),
        CheckConstraint("state IN ('open', 'closed', 'terminated')", name="ck_payment_plans_state"),
    )

    order_id: str = Field(primary_key=True, max_length=64)
    order_no: str = Field(default="", max_length=40)
    contract_id: str = Field(max_length=64)
    enterprise_id: str = Field(max_length=64, index=True)
    provider_id: str = Field(max_length=64, index=True)
    # The parties' and the product's names as the contract's signing announced them (staff lists).
    enterprise_name: str = Field(default="", sa_column=name_column())
    provider_name: str = Field(default="", sa_column=name_column())
    product_name: str = Field(default="", sa_column=name_column())
    total_fen: int = Field(sa_column=fen())
    subsidy_fen: int = Field(sa_column=fen())
    payable_fen: int = Field(sa_column=fen())
    deposit_fen: int = Field(sa_column=fen())
    balance_fen: int = Field(sa_column=fen())
    paid_fen: int = Field(default=0, sa_column=fen(default=0))
    pending_fen: int = Field(default=0, sa_column=fen(default=0))
    state: str = Field(default="open", max_length=20)
    terminated_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The termination payments accepted (DESIGN.md "Termination"): from then on nothing is paid out.
    termination_request_id: str | None = Field(default=None, max_length=36)
    terminated_at: datetime | None = Field(default=None, sa_column=ts())
    # What orders announced of the service: a termination is refused once it is complete (and an
    # enterprise's cancel once it has started).
    service_started_at: datetime | None = Field(default=None, sa_column=ts())
    service_completed_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Remittance(SQLModel, table=True):
    """One corporate transfer (对公转账) the enterprise recorded, and its verification."""

    __tablename__ = "remittances"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_remittances_amount_positive"),
        CheckConstraint("state IN ('pending', 'confirmed', 'rejected')", name="ck_remittances_state"),
        Index("ix_remittances_state_created", "state", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    order_id: str = Field(max_length=64, index=True)
    enterprise_id: str = Field(max_length=64)
    provider_id: str = Field(max_length=64, index=True)
    order_no: str = Field(default="", sa_column=Column(String(40), nullable=False, server_default=""))
    # The parties' and the product's names as the contract's signing announced them (staff lists).
    enterprise_name: str = Field(default="", sa_column=name_column())
    provider_name: str = Field(default="", sa_column=name_column())
    product_name: str = Field(default="", sa_column=name_column())
    amount_fen: int = Field(sa_column=fen())
    bank_reference: str = Field(max_length=100)
    payer_account: str = Field(max_length=100)
    receipt_file_ids: list[str] = Field(default_factory=list, sa_column=file_ids())
    # The receiving account shown when it was recorded (the payee may change it later).
    payee_account_name: str = Field(default="", max_length=200)
    payee_account_number: str = Field(default="", max_length=40)
    state: str = Field(default="pending", max_length=20)
    recorded_by: str = Field(max_length=64)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_role: str | None = Field(default=None, max_length=20)
    decided_at: datetime | None = Field(default=None, sa_column=ts())
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class SettlementClaim(SQLModel, table=True):
    """服务券兑付: at most one per order (UNIQUE order_id), for the committed subsidy."""

    __tablename__ = "settlement_claims"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_settlement_claims_amount_positive"),
        CheckConstraint(
            "state IN ('open', 'claimed', 'approved', 'paid', 'rejected', 'cancelled')",
            name="ck_settlement_claims_state",
        ),
        Index("ix_settlement_claims_provider_state", "provider_id", "state"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    order_id: str = Field(max_length=64, unique=True)
    order_no: str = Field(default="", max_length=40)
    contract_id: str | None = Field(default=None, max_length=64)
    enterprise_id: str = Field(max_length=64)
    provider_id: str = Field(max_length=64)
    # The parties' and the product's names as the contract's signing announced them (staff lists).
    enterprise_name: str = Field(default="", sa_column=name_column())
    provider_name: str = Field(default="", sa_column=name_column())
    product_name: str = Field(default="", sa_column=name_column())
    amount_fen: int = Field(sa_column=fen())
    state: str = Field(default="open", max_length=20)
    invoice_file_ids: list[str] = Field(default_factory=list, sa_column=file_ids())
    receipt_file_ids: list[str] = Field(default_factory=list, sa_column=file_ids())
    proof_file_ids: list[str] = Field(default_factory=list, sa_column=file_ids())
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = Field(default=None, sa_column=ts())
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_column=ts())
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    payout_reference: str | None = Field(default=None, max_length=100)
    paid_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Refund(SQLModel, table=True):
    """A confirmed remittance of a terminated contract, owed back to the enterprise."""

    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_payment_refunds_amount_positive"),
        CheckConstraint("state IN ('due', 'refunded')", name="ck_payment_refunds_state"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    remittance_id: str = Field(max_length=64, unique=True)
    order_id: str = Field(max_length=64, index=True)
    order_no: str = Field(default="", max_length=40)
    enterprise_id: str = Field(max_length=64)
    provider_id: str = Field(max_length=64)
    # The parties' and the product's names as the contract's signing announced them (staff lists).
    enterprise_name: str = Field(default="", sa_column=name_column())
    provider_name: str = Field(default="", sa_column=name_column())
    product_name: str = Field(default="", sa_column=name_column())
    amount_fen: int = Field(sa_column=fen())
    state: str = Field(default="due", max_length=20)
    refund_reference: str | None = Field(default=None, max_length=100)
    refunded_by: str | None = Field(default=None, max_length=64)
    refunded_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class ClaimFile(SQLModel, table=True):
    """Which claim a document backs: a file backs one claim (its primary key), so the same
    invoice, receipt or proof cannot be claimed twice, even by two claims at once."""

    __tablename__ = "settlement_claim_files"

    file_id: str = Field(primary_key=True, max_length=64)
    claim_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=20)  # invoice | receipt | proof
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
