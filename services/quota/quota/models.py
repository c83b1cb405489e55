"""quota's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process).

Balances of a voucher change only through the conditional UPDATEs of ``quota.service.ledger``;
the CHECK constraints below are the last line: whatever interleaving happens, the database
refuses a row where ``total != remaining + reserved + used + expired``, a negative balance, or
``settled > used``. The same holds for a provider's cap (``reserved + used <= cap``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _now_column() -> Any:
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _fen(default: int = 0) -> Any:
    return Column(BigInteger, nullable=False, server_default=str(default))


class Campaign(SQLModel, table=True):
    """An annual campaign (年度活动): its tier table and the portal's pending-budget figure."""

    __tablename__ = "campaigns"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # [{"amount_fen": 5000000, "label": "5万", "designations": ["一般规模以上制造业企业"]}, ...]
    tiers: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    pending_budget_fen: int = Field(default=0, sa_column=_fen())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class CampaignType(SQLModel, table=True):
    """One voucher type of one campaign: policy text, window, ratio, caps."""

    __tablename__ = "campaign_voucher_types"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    voucher_type: str = Field(sa_column=Column(String(30), primary_key=True))
    policy_text: str = Field(sa_column=Column(Text, nullable=False))
    valid_from: date = Field(sa_column=Column(Date, nullable=False))
    valid_to: date = Field(sa_column=Column(Date, nullable=False))
    ratio_bp: int = Field(default=5000, sa_column=Column(Integer, nullable=False, server_default="5000"))
    # Special types: the yearly cap per enterprise and the share of the basis (guarantee fee,
    # lease interest) a request may reach. General: the cap is the highest tier.
    yearly_cap_fen: int = Field(default=0, sa_column=_fen())
    basis_share_bp: int | None = Field(default=None, sa_column=Column(Integer))
    support_years: int | None = Field(default=None, sa_column=Column(Integer))


class Designation(SQLModel, table=True):
    """One line of an imported list (USCC + designation), the base list included."""

    __tablename__ = "designations"

    uscc: str = Field(sa_column=Column(String(18), primary_key=True))
    designation: str = Field(sa_column=Column(String(60), primary_key=True))
    imported_at: datetime | None = Field(default=None, sa_column=_now_column())


class QuotaApplication(SQLModel, table=True):
    """服务券配额申请. One live general application per enterprise and campaign (a partial
    unique index decides races); a rejected one may be made again."""

    __tablename__ = "quota_applications"
    __table_args__ = (
        Index(
            "uq_quota_applications_general_live",
            "enterprise_id",
            "campaign_year",
            unique=True,
            postgresql_where=text("voucher_type = 'general' AND state <> 'rejected'"),
        ),
        Index("ix_quota_applications_queue", "state", "flagged", "created_at"),
        CheckConstraint("requested_fen IS NULL OR requested_fen > 0", name="ck_application_requested"),
    )

    id: str = Field(primary_key=True, max_length=36)
    enterprise_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    enterprise_name: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    uscc: str | None = Field(default=None, sa_column=Column(String(18)))
    campaign_year: int = Field(sa_column=Column(Integer, nullable=False))
    voucher_type: str = Field(sa_column=Column(String(30), nullable=False))
    state: str = Field(default="pending_review", sa_column=Column(String(20), nullable=False))
    # General: the tier the designations give (or none: flagged for staff).
    flagged: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    tier: str | None = Field(default=None, sa_column=Column(Text))
    tier_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    # Special types: what the enterprise asks, its basis and proof.
    requested_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    basis_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    proof_file_ids: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    approved_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    reason: str | None = Field(default=None, sa_column=Column(Text))  # the reviewer's
    reviewer_id: str | None = Field(default=None, sa_column=Column(String(36)))
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    voucher_id: str | None = Field(default=None, sa_column=Column(String(36)))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Voucher(SQLModel, table=True):
    """服务券: one per enterprise, campaign and type. Its ratio and window are copied from the
    campaign at issue, so a later campaign change never alters it."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "campaign_year", "voucher_type", name="uq_vouchers_owner_type"),
        CheckConstraint(
            "remaining_fen >= 0 AND reserved_fen >= 0 AND used_fen >= 0 AND expired_fen >= 0 "
            "AND settled_fen >= 0",
            name="ck_vouchers_non_negative",
        ),
        CheckConstraint(
            "total_fen = remaining_fen + reserved_fen + used_fen + expired_fen", name="ck_vouchers_balance"
        ),
        CheckConstraint("settled_fen <= used_fen", name="ck_vouchers_settled"),
    )

    id: str = Field(primary_key=True, max_length=36)
    voucher_no: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    enterprise_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    # The enterprise's name as its application carried it (staff lists show names, not ids).
    enterprise_name: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    campaign_year: int = Field(sa_column=Column(Integer, nullable=False))
    voucher_type: str = Field(sa_column=Column(String(30), nullable=False))
    tier: str | None = Field(default=None, sa_column=Column(Text))
    ratio_bp: int = Field(sa_column=Column(Integer, nullable=False))
    valid_from: date = Field(sa_column=Column(Date, nullable=False))
    valid_to: date = Field(sa_column=Column(Date, nullable=False))
    total_fen: int = Field(default=0, sa_column=_fen())
    remaining_fen: int = Field(default=0, sa_column=_fen())
    reserved_fen: int = Field(default=0, sa_column=_fen())
    used_fen: int = Field(default=0, sa_column=_fen())
    settled_fen: int = Field(default=0, sa_column=_fen())
    expired_fen: int = Field(default=0, sa_column=_fen())
    # Set when the window closed and the unreserved remainder expired.
    expired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Reservation(SQLModel, table=True):
    """What quota decided for one order (the aggregate of quota's saga part).

    Every ``orders.order_submitted`` leaves a row (``none`` without a voucher, ``rejected``
    with the reason), so a contracts event can tell "no voucher" from "not seen yet".
    With a voucher: ``reserved -> committed -> settled``, or ``released`` / ``reversed``.
    """

    __tablename__ = "voucher_reservations"
    __table_args__ = (
        UniqueConstraint("voucher_id", "order_id", name="uq_reservations_voucher_order"),
        CheckConstraint(
            "amount_fen >= 0 AND committed_fen >= 0 AND committed_fen <= amount_fen", name="ck_reservation"
        ),
    )

    order_id: str = Field(primary_key=True, max_length=36)
    voucher_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    enterprise_id: str = Field(sa_column=Column(String(36), nullable=False))
    provider_id: str = Field(sa_column=Column(String(36), nullable=False))
    voucher_type: str = Field(sa_column=Column(String(30), nullable=False))
    # The year the provider's cap counts this subsidy in (None: not a general subsidy).
    cap_year: int | None = Field(default=None, sa_column=Column(Integer))
    state: str = Field(sa_column=Column(String(20), nullable=False))
    amount_fen: int = Field(default=0, sa_column=_fen())  # what was reserved
    committed_fen: int = Field(default=0, sa_column=_fen())  # the contract's subsidy
    ratio_bp: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    reason_code: str | None = Field(default=None, sa_column=Column(String(40)))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )


class Movement(SQLModel, table=True):
    """The append-only journal of a voucher: every balance change with the balances after."""

    __tablename__ = "voucher_movements"
    __table_args__ = (Index("ix_voucher_movements_voucher", "voucher_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    voucher_id: str = Field(sa_column=Column(String(36), nullable=False))
    # issue | reserve | commit | release | settle | expire | reverse
    kind: str = Field(sa_column=Column(String(10), nullable=False))
    order_id: str | None = Field(default=None, sa_column=Column(String(36)))
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    remaining_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    reserved_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    used_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    settled_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    expired_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime | None = Field(default=None, sa_column=_now_column())


class ProviderCap(SQLModel, table=True):
    """General-voucher subsidies to one provider in one year: reserved + used <= cap."""

    __tablename__ = "provider_subsidy_caps"
    __table_args__ = (
        CheckConstraint(
            "reserved_fen >= 0 AND used_fen >= 0 AND reserved_fen + used_fen <= cap_fen",
            name="ck_provider_cap",
        ),
    )

    provider_id: str = Field(sa_column=Column(String(36), primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    cap_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    reserved_fen: int = Field(default=0, sa_column=_fen())
    used_fen: int = Field(default=0, sa_column=_fen())
    reason: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )
