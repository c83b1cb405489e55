"""The rows the invariants are checked over: what each service's tables hold, as plain values.

Each dataclass names the columns it needs, as the services' models spell them
(``services/<name>/<name>/models.py``); :func:`row` builds one from any mapping (an asyncpg
record, a dict in a test), ignoring columns it does not need and leaving absent ones at their
default, so a column a service adds later changes nothing here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from quota.ledger import Balances

T = TypeVar("T")


def row(cls: type[T], values: Mapping[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in dict(values).items() if k in names})


def rows(cls: type[T], values: Iterable[Mapping[str, Any]]) -> list[T]:
    return [row(cls, v) for v in values]


# --- quota -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voucher(Balances):  # quota's six balances (keyword fields), then its own
    id: str
    enterprise_id: str = ""
    campaign_year: int = 0
    voucher_type: str = "general"
    voucher_no: str = ""
    tier: str | None = None


@dataclass(frozen=True)
class Movement(Balances):
    """One line of a voucher's ledger, with the voucher's balances after it."""

    id: int
    voucher_id: str
    kind: str  # issue | reserve | commit | release | settle | expire | reverse
    amount_fen: int
    order_id: str | None = None


@dataclass(frozen=True)
class Reservation:
    """quota's decision for one order: deciding | none | rejected | reserved | committed |
    settled | released | reversed."""

    order_id: str
    state: str
    voucher_id: str | None = None
    provider_id: str = ""
    voucher_type: str = "general"
    cap_year: int | None = None
    amount_fen: int = 0  # reserved
    committed_fen: int = 0  # the contract's subsidy once signed


@dataclass(frozen=True)
class ProviderCap:
    provider_id: str
    year: int
    cap_fen: int
    reserved_fen: int = 0
    used_fen: int = 0


@dataclass(frozen=True)
class Campaign:
    year: int
    tiers: list[dict[str, Any]] = field(default_factory=list)  # [{label, amount_fen, designations}]


@dataclass(frozen=True)
class Application:
    id: str
    enterprise_id: str = ""
    campaign_year: int = 0
    voucher_type: str = "general"
    state: str = "pending_review"
    tier: str | None = None
    tier_fen: int | None = None
    approved_fen: int | None = None
    voucher_id: str | None = None


# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    id: str
    status: str
    order_no: str = ""
    enterprise_id: str = ""
    provider_id: str = ""
    use_voucher: bool = False
    voucher_id: str | None = None
    subsidy_fen: int = 0  # what quota reserved (before: its quote)
    voucher_state: str = "none"
    committed_fen: int = 0
    contract_id: str | None = None
    contract_total_fen: int | None = None
    contract_subsidy_fen: int | None = None
    contract_payable_fen: int | None = None
    paid_fen: int = 0
    termination_pending: bool = False  # frozen: orders agreed to a termination


# --- contracts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    id: str
    order_id: str
    state: str  # drafting | pending_review | returned | agreed | signed | voided | terminated
    total_fen: int = 0
    subsidy_fen: int = 0
    payable_fen: int = 0
    deposit_fen: int = 0
    balance_fen: int = 0
    reserved_fen: int = 0
    signed_at: Any = None


# --- payments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    order_id: str
    contract_id: str = ""
    state: str = "open"  # open | closed | terminated
    termination_request_id: str | None = None  # payouts held for this termination request
    total_fen: int = 0
    subsidy_fen: int = 0
    payable_fen: int = 0
    deposit_fen: int = 0
    balance_fen: int = 0
    paid_fen: int = 0
    pending_fen: int = 0


@dataclass(frozen=True)
class Remittance:
    id: str
    order_id: str
    amount_fen: int
    state: str  # pending | confirmed | rejected


@dataclass(frozen=True)
class Claim:
    id: str
    order_id: str
    amount_fen: int
    state: str  # open | claimed | approved | paid | rejected | cancelled
    provider_id: str = ""


@dataclass(frozen=True)
class Refund:
    id: str
    order_id: str
    amount_fen: int
    state: str  # due | refunded
    remittance_id: str = ""


@dataclass(frozen=True)
class Conflict:
    """A money event a service kept as a conflict for staff (its audit log, ``conflict.*``)."""

    id: int
    action: str
    target_type: str = ""
    target_id: str = ""
    reason: str | None = None
    service: str = ""


# --- everything read -----------------------------------------------------------------------------

DEFAULT_PROVIDER_CAP_FEN = 500_000_000  # 500万元, quota's default


@dataclass
class Snapshot:
    """What was read from the services' databases. ``available`` names the services read;
    a check that needs one that is not is skipped."""

    available: set[str] = field(default_factory=set)
    vouchers: list[Voucher] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    caps: list[ProviderCap] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    remittances: list[Remittance] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    default_cap_fen: int = DEFAULT_PROVIDER_CAP_FEN
