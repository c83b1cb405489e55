"""Notifications: who a notice is for, who sees it, and what it says. Pure rules, no I/O.

A notice goes to exactly one recipient: a user, an organisation (every member, owner or
agent, sees it and reads it for themselves) or a staff role (every user of that role sees it;
an administrator, who may do everything, sees every staff role's). The texts are Chinese, as
a person reads them, with the snapshot the event carried (product, order no, amounts in yuan
as the manual prints them, the reason given); the link is the API path of the object the
person acts on.

:data:`RULES` maps each event type demands consumes for a notice to the notices it makes and
to the *subject* that orders it: the ordering guard keeps one stream per (event type,
aggregate, subject), so an older fact of the same kind arriving after a newer one (a
contract's first version submitted after its second) makes no stale notice, while distinct
facts (two transfers of one order) never hide each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.auth import MEMBER_ROLES, STAFF_ROLES
from common.categories import VOUCHER_TYPES
from common.events import (
    ContractAgreed,
    ContractReturned,
    ContractSigned,
    ContractSubmitted,
    EventPayload,
    OrderAwaitingAcceptance,
    OrderCompleted,
    PaymentReceived,
    ProductReviewed,
    ProviderApplicationRejected,
    ProviderApproved,
    QuotaApplicationApproved,
    QuotaApplicationRejected,
    RemittanceRecorded,
    RemittanceRejected,
    ServiceCompleted,
    ServiceStarted,
    SettlementApproved,
    SettlementPaid,
    SettlementRejected,
)
from common.money import format_yuan
from common.registry import API_PREFIX

KIND_MAX = 60
TITLE_MAX = 100
LINK_MAX = 300


@dataclass(frozen=True)
class Recipient:
    """Exactly one of a user, an organisation (its members) or a staff role."""

    user_id: str | None = None
    org_id: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        named = [v for v in (self.user_id, self.org_id, self.role) if v]
        if len(named) != 1:
            raise ValueError("a notice has exactly one recipient: a user, an organisation or a staff role")
        if self.role is not None and self.role not in STAFF_ROLES:
            raise ValueError(f"{self.role!r} is not a staff role ({', '.join(sorted(STAFF_ROLES))})")


@dataclass(frozen=True)
class Reader:
    """Who is reading: the caller's user, role and organisation (from the token)."""

    user_id: str
    role: str
    org_id: str | None = None


def roles_seen_by(role: str) -> tuple[str, ...]:
    """The staff roles whose notices ``role`` sees: its own; every one for an administrator."""
    if role == "administrator":
        return tuple(sorted(STAFF_ROLES))
    return (role,) if role in STAFF_ROLES else ()


def sees(reader: Reader, to: Recipient) -> bool:
    """Is a notice addressed ``to`` shown to ``reader``?"""
    if to.user_id is not None:
        return to.user_id == reader.user_id
    if to.org_id is not None:
        return reader.role in MEMBER_ROLES and reader.org_id == to.org_id
    return to.role in roles_seen_by(reader.role)


@dataclass(frozen=True)
class Draft:
    kind: str
    title: str
    body: str
    link: str
    to: Recipient

    def __post_init__(self) -> None:
        if not (0 < len(self.kind) <= KIND_MAX) or not self.kind.replace("_", "").isalnum():
            raise ValueError("kind: a snake_case code of at most 60 characters")
        if not (0 < len(self.title) <= TITLE_MAX):
            raise ValueError("title: 1 to 100 characters")
        if not self.body:
            raise ValueError("body: not empty")
        if not self.link.startswith("/") or len(self.link) > LINK_MAX:
            raise ValueError("link: a path starting with /, at most 300 characters")


# --- the texts -----------------------------------------------------------------------------------


def yuan(fen: int) -> str:
    return f"{format_yuan(fen)} 元"


def order_link(order_id: str, tail: str = "") -> str:
    return f"{API_PREFIX}/orders/{order_id}{tail}"


def _order(order_no: str, product_name: str = "") -> str:
    """订单 ORD…（产品名） or just 订单 ORD… when the product is not known."""
    return f"订单 {order_no}（{product_name}）" if product_name else f"订单 {order_no}"


def _reason(reason: str | None) -> str:
    return f"，原因：{reason}" if reason else ""


def order_awaiting_acceptance(p: OrderAwaitingAcceptance) -> list[Draft]:
    subsidy = f"，其中服务券抵扣 {yuan(p.subsidy_fen)}" if p.subsidy_fen > 0 else ""
    return [
        Draft(
            "order_awaiting_acceptance",
            "新订单待接单",
            f"您有新的订单待接单：{p.product_name}，订单号 {p.order_no}，下单企业 {p.enterprise_name}，"
            f"服务金额 {yuan(p.price_fen)}{subsidy}。请及时接单或拒绝。",
            order_link(p.order_id),
            Recipient(org_id=p.provider_id),
        )
    ]


def contract_submitted(p: ContractSubmitted) -> list[Draft]:
    return [
        Draft(
            "contract_submitted",
            "合同待确认",
            f"服务机构 {p.provider_name} 已提交{_order(p.order_no, p.product_name)}的服务合同（第 {p.contract_version} 版）："
            f"合同总金额 {yuan(p.total_fen)}，服务券抵扣 {yuan(p.subsidy_fen)}，实付金额 {yuan(p.payable_fen)}。"
            "请查看合同，同意或退回修改。",
            order_link(p.order_id, "/contract"),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def contract_returned(p: ContractReturned) -> list[Draft]:
    return [
        Draft(
            "contract_returned",
            "合同被退回修改",
            f"{p.enterprise_name or '企业'} 退回了{_order(p.order_no, p.product_name)}的服务合同"
            f"（第 {p.contract_version} 版）{_reason(p.reason)}。请修改后重新提交。",
            order_link(p.order_id, "/contract"),
            Recipient(org_id=p.provider_id),
        )
    ]


def contract_agreed(p: ContractAgreed) -> list[Draft]:
    body = (
        f"{_order(p.order_no, p.product_name)}的服务合同已确认，合同总金额 {yuan(p.total_fen)}。"
        "请完成人脸认证后签署合同。"
    )
    link = order_link(p.order_id, "/contract")
    return [
        Draft("contract_to_sign", "合同待签署", body, link, Recipient(org_id=p.enterprise_id)),
        Draft("contract_to_sign", "合同待签署", body, link, Recipient(org_id=p.provider_id)),
    ]


def contract_signed(p: ContractSigned) -> list[Draft]:
    """The enterprise is to pay (nothing when the voucher covers everything)."""
    if p.payable_fen <= 0:
        return []
    first = f"定金 {yuan(p.deposit_fen)}" if p.deposit_fen > 0 else f"{yuan(p.payable_fen)}"
    return [
        Draft(
            "contract_signed",
            "合同已签订，待支付",
            f"{_order(p.order_no, p.product_name)}的服务合同已由双方签署，实付金额 {yuan(p.payable_fen)}。"
            f"请通过对公转账向服务机构支付{first}，并在平台登记汇款。",
            order_link(p.order_id, "/payment"),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def remittance_recorded(p: RemittanceRecorded) -> list[Draft]:
    return [
        Draft(
            "remittance_recorded",
            "对公转账待核实",
            f"{_order(p.order_no)}的企业登记了一笔对公转账：{yuan(p.amount_fen)}，"
            f"银行流水号 {p.bank_reference}。请核实到账后确认。",
            order_link(p.order_id, "/payment"),
            Recipient(org_id=p.provider_id),
        )
    ]


def payment_received(p: PaymentReceived) -> list[Draft]:
    if not p.enterprise_id:  # from a publisher older than the snapshot: nobody to tell
        return []
    state = (
        "款项已全部付清。"
        if p.fully_paid
        else f"已支付 {yuan(p.paid_fen)}，待支付 {yuan(p.outstanding_fen)}。"
    )
    return [
        Draft(
            "remittance_confirmed",
            "转账已确认到账",
            f"{_order(p.order_no) if p.order_no else '订单'}的对公转账 {yuan(p.amount_fen)} 已确认到账；{state}",
            order_link(p.order_id, "/payment"),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def remittance_rejected(p: RemittanceRejected) -> list[Draft]:
    return [
        Draft(
            "remittance_rejected",
            "转账未通过核实",
            f"{_order(p.order_no)}的对公转账 {yuan(p.amount_fen)} 未通过到账核实{_reason(p.reason)}。"
            "请核对后重新登记。",
            order_link(p.order_id, "/payment"),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def service_started(p: ServiceStarted) -> list[Draft]:
    what = _order(p.order_no, p.product_name) if p.order_no else "您的订单"
    return [
        Draft(
            "service_started",
            "服务已开始",
            f"服务机构已开始为{what}提供服务。",
            order_link(p.order_id),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def service_completed(p: ServiceCompleted) -> list[Draft]:
    what = _order(p.order_no, p.product_name) if p.order_no else "您的订单"
    if p.status == "awaiting_balance":
        ask = "请支付尾款，并对本次服务进行评价。"
    elif p.status == "evaluated":
        ask = ""
    else:
        ask = "请对本次服务进行评价。"
    return [
        Draft(
            "service_completed",
            "服务已完成",
            f"服务机构已完成{what}的服务。{ask}",
            order_link(p.order_id),
            Recipient(org_id=p.enterprise_id),
        )
    ]


def order_completed(p: OrderCompleted) -> list[Draft]:
    """The provider may claim the subsidy (服务券兑付); nothing to claim without one."""
    if p.subsidy_fen <= 0:
        return []
    return [
        Draft(
            "settlement_claimable",
            "服务券可申请兑付",
            f"{_order(p.order_no)}已完成，服务券抵扣 {yuan(p.subsidy_fen)} 可申请兑付。"
            "请在“服务券兑付”中提交发票、转账凭证和服务证明。",
            f"{API_PREFIX}/me/settlements",
            Recipient(org_id=p.provider_id),
        )
    ]


def settlement_approved(p: SettlementApproved) -> list[Draft]:
    return [
        Draft(
            "settlement_approved",
            "兑付申请已通过",
            f"{_order(p.order_no)}的服务券兑付申请（{yuan(p.amount_fen)}）已审核通过，等待平台付款。",
            f"{API_PREFIX}/me/settlements",
            Recipient(org_id=p.provider_id),
        )
    ]


def settlement_rejected(p: SettlementRejected) -> list[Draft]:
    return [
        Draft(
            "settlement_rejected",
            "兑付申请未通过",
            f"{_order(p.order_no)}的服务券兑付申请（{yuan(p.amount_fen)}）未通过审核{_reason(p.reason)}。"
            "请补充材料后重新申请。",
            f"{API_PREFIX}/me/settlements",
            Recipient(org_id=p.provider_id),
        )
    ]


def settlement_paid(p: SettlementPaid) -> list[Draft]:
    what = _order(p.order_no) if p.order_no else "订单"
    ref = f"，付款流水号 {p.payout_reference}" if p.payout_reference else ""
    return [
        Draft(
            "settlement_paid",
            "服务券兑付已付款",
            f"{what}的服务券兑付款 {yuan(p.amount_fen)} 已支付{ref}，请注意查收。",
            f"{API_PREFIX}/me/settlements",
            Recipient(org_id=p.provider_id),
        )
    ]


def _voucher_type(code: str) -> str:
    return VOUCHER_TYPES.get(code, "服务券")


def quota_application_approved(p: QuotaApplicationApproved) -> list[Draft]:
    return [
        Draft(
            "quota_application_approved",
            "服务券配额申请已通过",
            f"您的{_voucher_type(p.voucher_type)}配额申请已审核通过，券号 {p.voucher_no}，"
            f"本次配额 {yuan(p.approved_fen)}。点击“去使用”即可选购服务产品。",
            f"{API_PREFIX}/me/vouchers",
            Recipient(org_id=p.enterprise_id),
        )
    ]


def quota_application_rejected(p: QuotaApplicationRejected) -> list[Draft]:
    return [
        Draft(
            "quota_application_rejected",
            "服务券配额申请未通过",
            f"您的{_voucher_type(p.voucher_type)}配额申请未通过审核{_reason(p.reason)}。可修改后重新申请。",
            f"{API_PREFIX}/me/vouchers",
            Recipient(org_id=p.enterprise_id),
        )
    ]


def provider_approved(p: ProviderApproved) -> list[Draft]:
    return [
        Draft(
            "provider_application_approved",
            "入驻申请已通过",
            f"{p.name or '贵单位'}的服务机构入驻申请已审核通过，现在可以发布服务产品。",
            f"{API_PREFIX}/me/provider-application",
            Recipient(org_id=p.org_id),
        )
    ]


def provider_application_rejected(p: ProviderApplicationRejected) -> list[Draft]:
    return [
        Draft(
            "provider_application_rejected",
            "入驻申请未通过",
            f"{p.org_name or '贵单位'}的服务机构入驻申请未通过审核{_reason(p.reason)}。可修改后重新申请。",
            f"{API_PREFIX}/me/provider-application",
            Recipient(org_id=p.org_id),
        )
    ]


def product_reviewed(p: ProductReviewed) -> list[Draft]:
    link = f"{API_PREFIX}/me/products/{p.product_id}"
    if p.approved:
        return [
            Draft(
                "product_approved",
                "服务产品审核通过",
                f"您的服务产品“{p.name}”已审核通过并上架。",
                link,
                Recipient(org_id=p.provider_id),
            )
        ]
    return [
        Draft(
            "product_rejected",
            "服务产品审核未通过",
            f"您的服务产品“{p.name}”未通过审核{_reason(p.reason)}。请修改后重新提交。",
            link,
            Recipient(org_id=p.provider_id),
        )
    ]


# --- which event makes which notices -------------------------------------------------------------


# --- demands' own decisions (made by demands.service, not from an event) ----------------------


def demand_link(demand_id: str, *, staff: bool = False) -> str:
    return f"{API_PREFIX}/{'admin' if staff else 'me'}/demands/{demand_id}"


def demand_submitted(demand_id: str, demand_no: str, name: str, org_name: str) -> Draft:
    return Draft(
        "demand_submitted",
        "新的需求待审核",
        f"{org_name} 提交了需求“{name}”（需求编号 {demand_no}），请审核。",
        demand_link(demand_id, staff=True),
        Recipient(role="reviewer"),
    )


_DECIDED = {
    "approve": ("demand_approved", "需求已发布", "已审核通过并在“企业需求”发布"),
    "return": ("demand_returned", "需求被退回修改", "被退回修改，请修改后重新提交"),
    "reject": ("demand_rejected", "需求审核不通过", "审核不通过"),
}


def demand_decided(
    demand_id: str, demand_no: str, name: str, org_id: str, decision: str, reason: str | None
) -> Draft:
    kind, title, what = _DECIDED[decision]
    return Draft(
        kind,
        title,
        f"您的需求“{name}”（需求编号 {demand_no}）{what}{_reason(reason)}。",
        demand_link(demand_id),
        Recipient(org_id=org_id),
    )


def demand_responded(demand_id: str, demand_no: str, name: str, org_id: str, provider_name: str) -> Draft:
    return Draft(
        "demand_responded",
        "有服务机构申请对接您的需求",
        f"{provider_name} 申请对接您的需求“{name}”（需求编号 {demand_no}），请查看联系方式并与其联系。",
        f"{demand_link(demand_id)}/responses",
        Recipient(org_id=org_id),
    )


def message_replied(message_id: str, user_id: str, content: str) -> Draft:
    quoted = content if len(content) <= 30 else content[:30] + "…"
    return Draft(
        "message_replied",
        "平台已回复您的留言",
        f"您的留言“{quoted}”已有回复，请查看。",
        f"{API_PREFIX}/me/messages#{message_id}",
        Recipient(user_id=user_id),
    )


@dataclass(frozen=True)
class Rule:
    draft: Callable[[Any], list[Draft]]
    # what orders the event's stream besides its type and aggregate (see the module)
    subject: Callable[[Any], str] = lambda _p: ""


def _remittance(p: Any) -> str:
    return str(p.remittance_id)


RULES: dict[type[EventPayload], Rule] = {
    OrderAwaitingAcceptance: Rule(order_awaiting_acceptance),
    ServiceStarted: Rule(service_started),
    ServiceCompleted: Rule(service_completed),
    OrderCompleted: Rule(order_completed),
    ContractSubmitted: Rule(contract_submitted),
    ContractReturned: Rule(contract_returned),
    ContractAgreed: Rule(contract_agreed),
    ContractSigned: Rule(contract_signed),
    RemittanceRecorded: Rule(remittance_recorded, _remittance),
    PaymentReceived: Rule(payment_received, _remittance),
    RemittanceRejected: Rule(remittance_rejected, _remittance),
    SettlementApproved: Rule(settlement_approved),
    SettlementRejected: Rule(settlement_rejected),
    SettlementPaid: Rule(settlement_paid),
    QuotaApplicationApproved: Rule(quota_application_approved),
    QuotaApplicationRejected: Rule(quota_application_rejected),
    ProviderApproved: Rule(provider_approved),
    ProviderApplicationRejected: Rule(provider_application_rejected),
    ProductReviewed: Rule(product_reviewed),
}
# the event types, as the registry row lists them
EVENT_TYPES: tuple[str, ...] = tuple(sorted(t.event_type for t in RULES))


def drafts_for(payload: EventPayload) -> list[Draft]:
    """The notices an event makes (none for a payload no rule names)."""
    rule = RULES.get(type(payload))
    return rule.draft(payload) if rule is not None else []


STREAM_MAX = 40  # common.tables.EventOrder.stream


def stream_of(event_type: str, payload: EventPayload) -> str:
    """The ordering guard's stream of the notices of this event (see the module): the fact's
    name, and a digest of its subject when it has one (the column holds 40 characters)."""
    rule = RULES.get(type(payload))
    subject = rule.subject(payload) if rule is not None else ""
    name = event_type.split(".", 1)[-1]
    if not subject:
        return name[:STREAM_MAX]
    return f"{name[:22]}:{hashlib.sha1(subject.encode(), usedforsecurity=False).hexdigest()[:16]}"
