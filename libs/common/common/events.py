"""The public contract between services: every event, its envelope and its registry.

An event is a pydantic payload model named ``<service>.<past_tense_fact>``; the envelope
around it carries ``event_id`` (also the AMQP ``message_id`` and the inbox key),
``event_type``, ``version``, ``occurred_at``, ``aggregate_id``, the per-aggregate
``sequence``, ``correlation_id`` and ``causation_id``, and when tracing is on the W3C trace
context of its producer (``trace``: ``traceparent``/``tracestate``). A breaking change gets a
new version (a new model registered under the same name).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1


P = TypeVar("P", bound=EventPayload)

_REGISTRY: dict[tuple[str, int], type[EventPayload]] = {}


def event(name: str, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Class decorator registering a payload model under its event name and version."""

    def register(cls: type[P]) -> type[P]:
        cls.event_type = name
        cls.version = version
        key = (name, version)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"event {name} v{version} registered twice")
        _REGISTRY[key] = cls
        return cls

    return register


def payload_model(event_type: str, version: int) -> type[EventPayload] | None:
    return _REGISTRY.get((event_type, version))


def registered_events() -> dict[tuple[str, int], type[EventPayload]]:
    return dict(_REGISTRY)


class Envelope(BaseModel, Generic[P]):
    """What travels on the bus. ``payload`` is the typed model once parsed."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    event_type: str
    version: int = 1
    # The publishing service (the first part of the event name); the ordering guard keys on it.
    source: str = ""
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    aggregate_id: str
    sequence: int = 0
    correlation_id: str | None = None
    causation_id: str | None = None
    # The producer's W3C trace context (common.tracing), only when tracing is on: absent from
    # the JSON otherwise, so envelopes written without it (older rows, DLQs) and with it
    # parse alike, both ways (an older build ignores the key).
    trace: dict[str, str] | None = None
    payload: Any

    @field_validator("trace", mode="before")
    @classmethod
    def _trace_or_nothing(cls, value: Any) -> dict[str, str] | None:
        # Observability never poisons an event: a malformed context is dropped, not refused.
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return value
        return None

    @model_validator(mode="after")
    def _source_from_type(self) -> Envelope[P]:
        if not self.source:  # an envelope written before the field existed
            object.__setattr__(self, "source", self.event_type.split(".", 1)[0])
        return self

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        aggregate_id: str,
        sequence: int = 0,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_id: str | None = None,
        trace: dict[str, str] | None = None,
    ) -> Envelope[Any]:
        return cls(
            event_id=event_id or str(uuid.uuid4()),
            event_type=payload.event_type,
            source=payload.event_type.split(".", 1)[0],
            version=payload.version,
            aggregate_id=aggregate_id,
            sequence=sequence,
            correlation_id=correlation_id,
            causation_id=causation_id,
            trace=trace,
            payload=payload,
        )

    def to_json(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json", exclude=_PAYLOAD_AND_TRACE if self.trace is None else _PAYLOAD)
        payload = self.payload
        doc["payload"] = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Envelope[Any]:
        """Parse an envelope; the payload becomes its registered model when there is one."""
        env = cls.model_validate({**doc, "payload": doc.get("payload") or {}})
        model = payload_model(env.event_type, env.version)
        if model is not None and isinstance(env.payload, dict):
            env = env.model_copy(update={"payload": model.model_validate(env.payload)})
        return env


_PAYLOAD = {"payload"}
_PAYLOAD_AND_TRACE = {"payload", "trace"}


class UnknownEvent(Exception):
    """An event type/version this build has no model for."""


# ---------------------------------------------------------------------------------------------
# The catalogue (DESIGN.md "Event catalogue"). Later services add theirs here.
# ---------------------------------------------------------------------------------------------


@event("identity.organization_certified")
class OrganizationCertified(EventPayload):
    org_id: str
    name: str
    uscc: str
    kind: str  # enterprise | provider: what the organisation certified as


@event("identity.organization_suspended")
class OrganizationSuspended(EventPayload):
    org_id: str
    reason: str


@event("identity.organization_restored")
class OrganizationRestored(EventPayload):
    org_id: str
    reason: str


@event("identity.bank_account_changed")
class BankAccountChanged(EventPayload):
    org_id: str
    account_name: str
    bank_name: str
    bank_region: str
    branch_name: str
    account_number: str


@event("identity.user_access_changed")
class UserAccessChanged(EventPayload):
    """Identity took a right away (aggregate: the user). Every service refuses the user's
    tokens issued before ``not_before``: all of them, or only those of ``session_ids`` (the
    tokens' ``sid``) when it names any (common.access)."""

    user_id: str
    org_id: str | None = None
    # deactivated | role_changed | agent_removed | sessions_revoked (logout, password change
    # or reset, a refresh token used twice); a string, so a new kind never poisons an older consumer
    change: str
    not_before: datetime
    session_ids: list[str] = Field(default_factory=list)


@event("catalog.provider_approved")
class ProviderApproved(EventPayload):
    org_id: str
    name: str


@event("catalog.provider_application_rejected")
class ProviderApplicationRejected(EventPayload):
    """A reviewer rejected an organisation's 申请入驻平台 (aggregate: the organisation, like
    ``catalog.provider_approved``); it may apply again."""

    application_id: str
    org_id: str
    org_name: str
    reason: str


@event("catalog.product_reviewed")
class ProductReviewed(EventPayload):
    """A reviewer approved (listed) or rejected a product (aggregate: the product)."""

    product_id: str
    provider_id: str
    name: str
    approved: bool
    reason: str | None = None


@event("catalog.product_changed")
class ProductChanged(EventPayload):
    """A product's sellable snapshot changed (listed, unlisted, price, max subsidy, ...)."""

    product_id: str
    provider_id: str
    name: str
    category: str
    price_fen: int  # the platform price (平台销售价)
    market_price_fen: int
    max_subsidy_fen: int
    listed: bool
    status: str  # draft | pending_review | rejected | listed | unlisted
    # the provider as catalog shows it on the product (服务机构, 联系人, 服务电话): orders keeps
    # them on an order made from its copy of this snapshot. Republished for each of the
    # provider's products when its profile changes; empty in events written before.
    provider_name: str = ""
    provider_contact_name: str = ""
    provider_contact_phone: str = ""


# --- orders ------------------------------------------------------------------------------------
# Aggregate: the order (aggregate_id = order_id) for every orders event.


@event("orders.order_submitted")
class OrderSubmitted(EventPayload):
    order_id: str
    order_no: str
    enterprise_id: str
    enterprise_name: str
    provider_id: str
    provider_name: str
    product_id: str
    product_name: str
    category: str
    # general | financing_guarantee | equipment_leasing: the type that pays for this category
    voucher_type: str
    use_voucher: bool
    price_fen: int
    max_subsidy_fen: int
    voucher_id: str | None = None  # the voucher quota quoted at submission, when it had one


@event("orders.order_accepted")
class OrderAccepted(EventPayload):
    order_id: str
    order_no: str
    enterprise_id: str
    enterprise_name: str
    provider_id: str
    provider_name: str
    product_id: str
    product_name: str
    category: str
    price_fen: int
    subsidy_reserved_fen: int  # 0 without a voucher
    ratio_bp: int  # the deduction ratio quota used, in basis points (5000 = 50%)
    max_subsidy_fen: int
    voucher_id: str | None = None


@event("orders.order_cancelled")
class OrderCancelled(EventPayload):
    order_id: str
    reason: str
    # enterprise | provider | timeout | voucher | system: who or what ended the order
    cancelled_by: str = "system"
    reason_code: str | None = None


@event("orders.cancellation_requested")
class CancellationRequested(EventPayload):
    """After acceptance orders never cancels on its own: it asks contracts to void."""

    order_id: str
    reason: str
    requested_by: str  # enterprise | timeout
    # True when the enterprise cancels a signed order with nothing paid (a termination)
    terminate_if_signed: bool = False


@event("orders.order_awaiting_acceptance")
class OrderAwaitingAcceptance(EventPayload):
    """The order waits for its provider to accept it (待接单): at submission without a voucher,
    or once quota reserved the subsidy. What the provider's notice says (demands)."""

    order_id: str
    order_no: str
    enterprise_id: str
    enterprise_name: str
    provider_id: str
    provider_name: str
    product_id: str
    product_name: str
    price_fen: int
    subsidy_fen: int  # what the voucher covers (0 without one)


@event("orders.service_started")
class ServiceStarted(EventPayload):
    order_id: str
    provider_id: str
    enterprise_id: str
    # the snapshot the enterprise's notice shows (demands); empty from an older publisher
    order_no: str = ""
    product_name: str = ""


@event("orders.service_completed")
class ServiceCompleted(EventPayload):
    order_id: str
    provider_id: str
    enterprise_id: str
    order_no: str = ""
    product_name: str = ""
    # the order's status after the completion: awaiting_balance (尾款 owed), completed, evaluated
    status: str = ""


@event("orders.termination_agreed")
class OrderTerminationAgreed(EventPayload):
    """Orders agrees to a termination (the service is not complete) and freezes the order: no
    payment, cancel or service step until the contract is terminated or the request withdrawn."""

    order_id: str
    contract_id: str
    request_id: str


@event("orders.termination_refused")
class OrderTerminationRefused(EventPayload):
    """Orders refuses a termination: the service is complete (or, for an enterprise's cancel,
    the order has moved on)."""

    order_id: str
    contract_id: str
    request_id: str
    reason_code: str  # service_completed | cancel_not_allowed
    reason: str


@event("orders.order_completed")
class OrderCompleted(EventPayload):
    """Service complete and fully paid: the provider may claim the subsidy (兑付)."""

    order_id: str
    order_no: str
    enterprise_id: str
    provider_id: str
    product_id: str
    contract_id: str | None
    subsidy_fen: int
    total_fen: int


@event("orders.order_evaluated")
class OrderEvaluated(EventPayload):
    order_id: str
    provider_id: str
    product_id: str
    rating: int  # 1..5
    content: str = ""


# --- quota -------------------------------------------------------------------------------------
# Aggregate: the order (aggregate_id = order_id): these are the reservation's movements, and
# their one consumer (orders) follows them per order.


@event("quota.voucher_reserved")
class VoucherReserved(EventPayload):
    order_id: str
    voucher_id: str
    voucher_no: str
    amount_fen: int
    ratio_bp: int
    remaining_fen: int  # the voucher's remaining balance after the reservation


@event("quota.voucher_reservation_rejected")
class VoucherReservationRejected(EventPayload):
    order_id: str
    voucher_id: str | None
    # no_voucher | not_owner | wrong_type | outside_window | nothing_left | provider_cap_reached
    # | suspended | voucher_not_active
    reason_code: str
    reason: str


@event("quota.voucher_deducted")
class VoucherDeducted(EventPayload):
    """The contract's subsidy is committed (used); the rest of the reservation released."""

    order_id: str
    voucher_id: str
    amount_fen: int  # committed = the contract's subsidy
    released_fen: int  # reserved - committed, returned (or expired)


@event("quota.voucher_released")
class VoucherReleased(EventPayload):
    order_id: str
    voucher_id: str
    amount_fen: int  # what the reservation held
    expired_fen: int = 0  # of which expired instead of returning (the window had closed)
    reason: str = ""


@event("quota.voucher_reversed")
class VoucherReversed(EventPayload):
    """A terminated contract's unsettled deduction is given back (or expires)."""

    order_id: str
    voucher_id: str
    amount_fen: int
    expired_fen: int = 0
    refused: bool = False  # True when the deduction was already settled: nothing reversed
    reason: str = ""


# Aggregate: the application (aggregate_id = application_id): a reviewer's decision.


@event("quota.application_approved")
class QuotaApplicationApproved(EventPayload):
    application_id: str
    enterprise_id: str
    voucher_type: str  # general | financing_guarantee | equipment_leasing
    approved_fen: int
    voucher_id: str
    voucher_no: str
    reason: str | None = None


@event("quota.application_rejected")
class QuotaApplicationRejected(EventPayload):
    application_id: str
    enterprise_id: str
    voucher_type: str
    reason: str


# --- contracts ---------------------------------------------------------------------------------
# Aggregate: the order (aggregate_id = order_id), one contract per order.


@event("contracts.contract_signed")
class ContractSigned(EventPayload):
    order_id: str
    contract_id: str
    enterprise_id: str
    provider_id: str
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int
    document_sha256: str = ""
    order_no: str = ""  # the order's number (ORD...), for the payment screens and refunds
    product_name: str = ""  # for the enterprise's notice (demands) and payments' staff lists
    # The parties' names as on the order, copied onto payments' rows for the staff lists.
    enterprise_name: str = ""
    provider_name: str = ""


@event("contracts.contract_submitted")
class ContractSubmitted(EventPayload):
    """The provider submitted the contract (a version) to the enterprise, which agrees or
    returns it (合同待确认)."""

    order_id: str
    order_no: str
    contract_id: str
    contract_version: int  # the submitted version (合同版本)
    enterprise_id: str
    provider_id: str
    provider_name: str
    product_name: str
    total_fen: int
    subsidy_fen: int
    payable_fen: int


@event("contracts.contract_returned")
class ContractReturned(EventPayload):
    """The enterprise returned the submitted version to the provider (退回修改) with a reason."""

    order_id: str
    order_no: str
    contract_id: str
    contract_version: int  # the submitted version (合同版本)
    enterprise_id: str
    enterprise_name: str
    provider_id: str
    product_name: str
    reason: str


@event("contracts.contract_agreed")
class ContractAgreed(EventPayload):
    """The enterprise agreed (immutable from now): both parties are to sign."""

    order_id: str
    order_no: str
    contract_id: str
    contract_version: int  # the submitted version (合同版本)
    enterprise_id: str
    provider_id: str
    product_name: str
    total_fen: int


@event("contracts.contract_party_signed")
class ContractPartySigned(EventPayload):
    """One party signed the agreed contract (签署); the second signature is followed, in the
    same transaction, by ``contracts.contract_signed``. Orders keeps who has signed, so an
    order row offers 签署 to the party that has not."""

    order_id: str
    contract_id: str
    party: str  # enterprise | provider


@event("contracts.contract_voided")
class ContractVoided(EventPayload):
    order_id: str
    contract_id: str | None
    reason: str


@event("contracts.contract_terminated")
class ContractTerminated(EventPayload):
    order_id: str
    contract_id: str
    reason: str
    terminated_by: str  # administrator | enterprise


@event("contracts.termination_requested")
class TerminationRequested(EventPayload):
    """Staff (or an enterprise's cancel of a signed order) asked to terminate: the contract is
    ``terminating`` (frozen). Two services must agree, each deciding in its own database what
    must not happen together with a termination: payments (a payout: it holds every payout
    from now on) and orders (the service's completion: it freezes the order). Contracts
    terminates once both agreed, and withdraws the request when either refuses."""

    order_id: str
    contract_id: str
    request_id: str  # each answer names the request it answers
    reason: str
    requested_by: str  # administrator | enterprise
    requested_by_user: str | None = None


@event("contracts.termination_withdrawn")
class TerminationWithdrawn(EventPayload):
    """A termination request one of the two refused: the contract is ``signed`` again; payments
    lets payouts go on and orders unfreezes the order (each only for this request)."""

    order_id: str
    contract_id: str
    request_id: str
    reason_code: str
    reason: str


@event("contracts.cancellation_refused")
class CancellationRefused(EventPayload):
    """An order's cancellation request that contracts (or payments, for a termination) refused:
    the signing stands; orders clears its pending marker and shows why."""

    order_id: str
    contract_id: str | None
    # already_signed | order_already_paid | payment_pending | service_started | service_completed
    # | settlement_paid | termination_pending
    reason_code: str
    reason: str
    requested_by: str  # enterprise | timeout


# --- payments ----------------------------------------------------------------------------------
# Aggregate: the order (aggregate_id = order_id).


@event("payments.remittance_recorded")
class RemittanceRecorded(EventPayload):
    """The enterprise recorded a transfer (对公转账): the payee provider (or finance) is to
    verify it (到账核实)."""

    order_id: str
    order_no: str
    remittance_id: str
    enterprise_id: str
    provider_id: str
    amount_fen: int
    bank_reference: str


@event("payments.payment_received")
class PaymentReceived(EventPayload):
    """A transfer confirmed (到账核实: received)."""

    order_id: str
    remittance_id: str
    amount_fen: int
    paid_fen: int
    outstanding_fen: int
    deposit_met: bool
    fully_paid: bool
    # the snapshot the enterprise's notice needs (demands); empty from an older publisher
    enterprise_id: str = ""
    provider_id: str = ""
    order_no: str = ""


@event("payments.remittance_rejected")
class RemittanceRejected(EventPayload):
    """A transfer the payee (or finance) did not find: rejected with a reason."""

    order_id: str
    order_no: str
    remittance_id: str
    enterprise_id: str
    provider_id: str
    amount_fen: int
    reason: str


@event("payments.settlement_approved")
class SettlementApproved(EventPayload):
    """Finance approved the provider's settlement claim (兑付); the payout follows."""

    order_id: str
    order_no: str
    settlement_id: str
    provider_id: str
    amount_fen: int


@event("payments.settlement_rejected")
class SettlementRejected(EventPayload):
    """Finance rejected the claim with a reason; the provider may claim again."""

    order_id: str
    order_no: str
    settlement_id: str
    provider_id: str
    amount_fen: int
    reason: str


@event("payments.settlement_paid")
class SettlementPaid(EventPayload):
    order_id: str
    settlement_id: str
    provider_id: str
    amount_fen: int
    payout_reference: str
    order_no: str = ""  # for the provider's notice (demands)


@event("payments.termination_accepted")
class TerminationAccepted(EventPayload):
    """Payments accepted a termination under the plan's lock: it holds every payout of the order
    from now on (until the contract is terminated, or the request withdrawn)."""

    order_id: str
    contract_id: str
    request_id: str
    reason: str  # the termination's reason, as asked


@event("payments.termination_refused")
class TerminationRefused(EventPayload):
    """Payments refused a termination (the settlement is paid, or, for an enterprise's cancel,
    money paid or a transfer pending): contracts withdraws the request."""

    order_id: str
    contract_id: str
    request_id: str
    reason_code: str
    reason: str
