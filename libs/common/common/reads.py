"""The public contract of the synchronous reads: what each ``/internal/`` endpoint another
service parses answers (or, for a write, takes), beside the events (``common.events``).

The producer declares the model as its route's ``response_model`` and returns it; the
consumer parses the answer with ``Model.model_validate`` (``ServiceClients.read``) and reads
attributes, never ``doc["..."]`` and casts. Same policy as the events: frozen, and
``extra="ignore"``, so a newer producer's added field does not break an older consumer; a
field added later has a default, so an older producer's answer still parses. The JSON on the
wire is the one the services exchanged before these models (field names and types).

Which service reads which (``common.registry``'s ``calls``):

- :class:`ProductFacts`  catalog ``GET /internal/products/{id}``  <- orders, quota
- :class:`Quote`         quota ``GET /internal/quote``            <- orders, catalog
- :class:`VoucherBalances` quota ``GET /internal/vouchers``       (other services' screens)
- :class:`OrganizationFacts` identity ``GET /internal/organizations/{id}`` <- common.orgs
- :class:`FileMeta`      identity ``GET /internal/files/{id}``    <- common.files, demands
- :class:`FileGrant`     identity ``POST /internal/files/{id}/grants`` (body) <- common.files
- :class:`PortalStats`   ``GET /internal/stats`` of each service whose registry row names figures
                         <- the gateway's /portal/stats
- :class:`AuditFeed`     every service's ``GET /internal/audit-log`` (``common.audit``)
                         <- the gateway's /admin/audit-log
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel


class ReadModel(BaseModel):
    """A synchronous read's answer (or a write's body): frozen, extra fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --- catalog ---------------------------------------------------------------------------------


class ProductFacts(ReadModel):
    """A product's current sellable facts (catalog), for orders at submission and quota's
    quote, and its provider's contact (联系人 and 服务电话, the public hotline) that orders keeps
    on the order for the enterprise (双方接洽)."""

    id: str
    name: str
    category: str
    provider_id: str
    provider_name: str = ""
    # added with 双方接洽: absent from an older catalog's answer (orders keeps no contact then)
    provider_contact_name: str | None = None
    provider_contact_phone: str | None = None
    platform_price_fen: int
    market_price_fen: int = 0
    max_subsidy_fen: int = 0
    status: str = "listed"  # draft | pending_review | rejected | listed | unlisted
    listed: bool = False
    provider_suspended: bool = False

    @property
    def sellable(self) -> bool:
        """Listed, by both of catalog's words for it."""
        return self.listed and self.status == "listed"


# --- quota -----------------------------------------------------------------------------------


class Quote(ReadModel):
    """The subsidy an enterprise's usable voucher would give now (quota; 404: none)."""

    voucher_id: str
    voucher_no: str
    voucher_type: str
    subsidy_fen: int
    ratio_bp: int
    remaining_fen: int
    valid_from: date
    valid_to: date


class VoucherBalance(ReadModel):
    """One voucher of an enterprise and its balances (quota)."""

    id: str
    voucher_no: str
    campaign_year: int
    voucher_type: str
    tier: str | None
    ratio_bp: int
    valid_from: date
    valid_to: date
    total_fen: int
    remaining_fen: int
    reserved_fen: int
    used_fen: int
    settled_fen: int
    expired_fen: int


class VoucherBalances(ReadModel):
    items: list[VoucherBalance]


# --- identity --------------------------------------------------------------------------------


class OrganizationFacts(ReadModel):
    """An organisation as identity knows it now: what another service keeps a copy of
    (common.orgs), and whether a receiving account (支付认证) is on file."""

    org_id: str
    name: str
    uscc: str | None
    kind: str | None
    certified: bool
    provider: bool
    suspended: bool
    suspended_reason: str | None
    bank_account: bool = False


class FileMeta(ReadModel):
    """A stored file's metadata (identity's ``POST /files``): whose it is and what it is."""

    file_id: str
    organization_id: str | None
    uploader_id: str | None = None
    name: str = ""
    content_type: str
    size: int = 0
    sha256: str = ""
    created_at: datetime | None = None


class FileGrant(ReadModel):
    """Let a deal's counterparty (or its reviewers) read a file."""

    organization_id: str = Field(min_length=1, max_length=36)
    reason: str | None = Field(default=None, max_length=200)


# --- every service, for the gateway ----------------------------------------------------------


class PortalStats(RootModel[dict[str, int]]):
    """A service's portal figures (``GET /internal/stats``): figure name -> integer (a count,
    or an amount in fen), the figures its registry row names (``common.registry``'s ``stats``).

    A mapping, not a model with a field per figure: each service answers different figures,
    the registry already names them (one place, not two), and the gateway takes from each
    answer the figures its row names, a figure an older service does not answer yet being
    null on /portal/stats. The wire is the flat object the services always answered
    (``{"products": 2}``); what the contract adds is that every figure is an integer."""

    model_config = ConfigDict(frozen=True)

    def figure(self, name: str) -> int | None:
        return self.root.get(name)


class AuditRecord(ReadModel):
    """One staff decision (or a money conflict, ``conflict.<kind>``) as the service that made
    it keeps it (``common.audit``), named with that service."""

    id: int | None = None
    service: str = ""
    at: AwareDatetime | None
    actor_id: str
    actor_role: str
    action: str
    target_type: str
    target_id: str
    reason: str | None
    details: dict[str, Any]


class AuditFeed(ReadModel):
    """A service's audit log, newest first (``GET /internal/audit-log``), that the gateway
    composes into the staff's ``/api/v1/admin/audit-log``."""

    items: list[AuditRecord]
