"""contracts's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

Races are decided here: one contract per order (unique ``order_id``), one seal per
organisation (its primary key), one signature per party and contract, and a verification
token is spent once (``used_verifications``' primary key is its ``jti``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlmodel import Field, SQLModel

from common.audit import AuditEntry  # noqa: F401 - contracts's audit log is the common one


def new_id() -> str:
    return str(uuid.uuid4())


def ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if default_now else None
    )


def money(default: int = 0) -> Any:
    return Column(BigInteger, nullable=False, server_default=str(default))


class Contract(SQLModel, table=True):
    """One per order: the snapshot of the accepted order, the current terms and the state."""

    __tablename__ = "contracts"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    order_id: str = Field(max_length=36, unique=True)
    order_no: str = Field(default="", max_length=32)
    enterprise_id: str = Field(max_length=36, index=True)
    enterprise_name: str = Field(default="", max_length=200)
    provider_id: str = Field(max_length=36, index=True)
    provider_name: str = Field(default="", max_length=200)
    product_id: str = Field(max_length=36)
    product_name: str = Field(default="", max_length=200)
    category: str = Field(default="", max_length=40)
    price_fen: int = Field(default=0, sa_column=money())
    reserved_fen: int = Field(default=0, sa_column=money())  # what quota reserved for the order
    ratio_bp: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    max_subsidy_fen: int = Field(default=0, sa_column=money())  # the product's max subsidy
    voucher_id: str | None = Field(default=None, max_length=36)

    state: str = Field(default="drafting", sa_column=Column(String(20), nullable=False, index=True))
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    terms_set: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    total_fen: int = Field(default=0, sa_column=money())
    subsidy_fen: int = Field(default=0, sa_column=money())
    payable_fen: int = Field(default=0, sa_column=money())
    deposit_fen: int = Field(default=0, sa_column=money())
    balance_fen: int = Field(default=0, sa_column=money())
    terms: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    return_reason: str | None = Field(default=None, sa_column=Column(Text))

    submitted_at: datetime | None = Field(default=None, sa_column=ts())
    agreed_at: datetime | None = Field(default=None, sa_column=ts())
    signed_at: datetime | None = Field(default=None, sa_column=ts())
    voided_at: datetime | None = Field(default=None, sa_column=ts())
    void_reason: str | None = Field(default=None, sa_column=Column(Text))
    terminated_at: datetime | None = Field(default=None, sa_column=ts())
    terminate_reason: str | None = Field(default=None, sa_column=Column(Text))
    terminated_by: str | None = Field(default=None, max_length=20)
    # The termination asked of payments and orders (DESIGN.md "Termination"): while
    # ``terminating`` the contract is frozen; each answer names the request it answers, and the
    # contract is terminated once both agreed.
    termination_request_id: str | None = Field(default=None, max_length=36)
    termination_requested_at: datetime | None = Field(default=None, sa_column=ts())
    termination_requested_by: str | None = Field(default=None, max_length=20)  # administrator | enterprise
    termination_request_reason: str | None = Field(default=None, sa_column=Column(Text))
    termination_payments_agreed: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    termination_orders_agreed: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    termination_refused_at: datetime | None = Field(default=None, sa_column=ts())
    termination_refused_reason: str | None = Field(default=None, sa_column=Column(Text))
    document_sha256: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )


class ContractVersion(SQLModel, table=True):
    """Every version the provider submitted, kept as it was (and why it came back)."""

    __tablename__ = "contract_versions"
    __table_args__ = (UniqueConstraint("contract_id", "version", name="uq_contract_versions_version"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    contract_id: str = Field(max_length=36, index=True)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    total_fen: int = Field(sa_column=money())
    subsidy_fen: int = Field(sa_column=money())
    payable_fen: int = Field(sa_column=money())
    deposit_fen: int = Field(sa_column=money())
    balance_fen: int = Field(sa_column=money())
    terms: str = Field(sa_column=Column(Text, nullable=False))
    submitted_by: str = Field(max_length=36)
    submitted_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    return_reason: str | None = Field(default=None, sa_column=Column(Text))
    returned_at: datetime | None = Field(default=None, sa_column=ts())
    agreed_at: datetime | None = Field(default=None, sa_column=ts())


class OrderFacts(SQLModel, table=True):
    """What contracts knows of the order from others' events (it may know before the draft
    exists): cancelled, void asked for, money received, settlement paid."""

    __tablename__ = "contract_order_facts"

    order_id: str = Field(primary_key=True, max_length=36)
    cancelled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    void_requested: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    paid_fen: int = Field(default=0, sa_column=money())
    settlement_paid: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )


class Seal(SQLModel, table=True):
    """An organisation's e-seal (制作签章): its image, and the key and certificate the
    platform's CA issued to it (the key encrypted at rest)."""

    __tablename__ = "seals"

    org_id: str = Field(primary_key=True, max_length=36)
    org_name: str = Field(max_length=200)
    image_png: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    certificate_pem: str = Field(sa_column=Column(Text, nullable=False))
    private_key_enc: str = Field(sa_column=Column(Text, nullable=False))
    certificate_serial: str = Field(max_length=64)
    created_by: str = Field(max_length=36)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class Signature(SQLModel, table=True):
    __tablename__ = "contract_signatures"
    __table_args__ = (UniqueConstraint("contract_id", "party", name="uq_contract_signatures_party"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    contract_id: str = Field(max_length=36, index=True)
    party: str = Field(max_length=20)  # enterprise | provider
    org_id: str = Field(max_length=36)
    user_id: str = Field(max_length=36)
    # SHA-256 of the document the party signed (the bytes before its signature was added).
    signed_sha256: str = Field(max_length=64)
    verification_jti: str = Field(max_length=64)
    signed_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class ContractDocument(SQLModel, table=True):
    """The agreed contract's PDF, with each signature added as an incremental update."""

    __tablename__ = "contract_documents"

    contract_id: str = Field(primary_key=True, max_length=36)
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )


class UsedVerification(SQLModel, table=True):
    """Identity-verification tokens already spent: each one is good for one act."""

    __tablename__ = "used_verifications"

    jti: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=36)
    purpose: str = Field(max_length=20)
    object_id: str | None = Field(default=None, max_length=36)
    used_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class SigningAuthority(SQLModel, table=True):
    """DEVELOPMENT ONLY: the generated signing CA when settings name none (never in production,
    where the CA comes from settings)."""

    __tablename__ = "contract_signing_ca"

    id: int = Field(default=1, primary_key=True)
    key_enc: str = Field(sa_column=Column(Text, nullable=False))  # encrypted like the seals' keys
    cert_pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
