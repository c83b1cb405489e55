"""One sample of every event that makes notices, between an enterprise and a provider, with
who must be told and what kind of notice they get."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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

ORDER_NO = "ORD240813170835637"
PRODUCT = "人才培训服务"


@dataclass(frozen=True)
class Sample:
    payload: EventPayload
    aggregate_id: str
    # (party, kind): "enterprise" or "provider" (the organisation told), the notice's kind
    told: tuple[tuple[str, str], ...]
    # words the body must hold (the snapshot it shows)
    words: tuple[str, ...] = ()


def samples(enterprise_id: str, provider_id: str) -> list[Sample]:
    order = str(uuid.uuid4())
    remittance = str(uuid.uuid4())
    e, p = enterprise_id, provider_id
    common = {"order_id": order, "order_no": ORDER_NO}
    return [
        Sample(
            OrderAwaitingAcceptance(
                **common,
                enterprise_id=e,
                enterprise_name="广西北软软件股份有限公司",
                provider_id=p,
                provider_name="广西科智信息服务有限公司",
                product_id="product-1",
                product_name=PRODUCT,
                price_fen=4_000,
                subsidy_fen=1_000,
            ),
            order,
            (("provider", "order_awaiting_acceptance"),),
            ("您有新的订单待接单：人才培训服务", ORDER_NO, "40 元", "10 元"),
        ),
        Sample(
            ServiceStarted(
                order_id=order, provider_id=p, enterprise_id=e, order_no=ORDER_NO, product_name=PRODUCT
            ),
            order,
            (("enterprise", "service_started"),),
            (ORDER_NO, PRODUCT),
        ),
        Sample(
            ServiceCompleted(
                order_id=order,
                provider_id=p,
                enterprise_id=e,
                order_no=ORDER_NO,
                product_name=PRODUCT,
                status="awaiting_balance",
            ),
            order,
            (("enterprise", "service_completed"),),
            (ORDER_NO, "尾款"),
        ),
        Sample(
            OrderCompleted(
                **common,
                enterprise_id=e,
                provider_id=p,
                product_id="product-1",
                contract_id="contract-1",
                subsidy_fen=1_000,
                total_fen=5_000,
            ),
            order,
            (("provider", "settlement_claimable"),),
            (ORDER_NO, "10 元", "兑付"),
        ),
        Sample(
            ContractSubmitted(
                **common,
                contract_id="contract-1",
                contract_version=2,
                enterprise_id=e,
                provider_id=p,
                provider_name="广西科智信息服务有限公司",
                product_name=PRODUCT,
                total_fen=5_000,
                subsidy_fen=1_000,
                payable_fen=4_000,
            ),
            order,
            (("enterprise", "contract_submitted"),),
            ("第 2 版", "50 元", "40 元"),
        ),
        Sample(
            ContractReturned(
                **common,
                contract_id="contract-1",
                contract_version=1,
                enterprise_id=e,
                enterprise_name="广西北软软件股份有限公司",
                provider_id=p,
                product_name=PRODUCT,
                reason="定金比例请改为两成",
            ),
            order,
            (("provider", "contract_returned"),),
            ("定金比例请改为两成",),
        ),
        Sample(
            ContractAgreed(
                **common,
                contract_id="contract-1",
                contract_version=2,
                enterprise_id=e,
                provider_id=p,
                product_name=PRODUCT,
                total_fen=5_000,
            ),
            order,
            (("enterprise", "contract_to_sign"), ("provider", "contract_to_sign")),
            ("签署",),
        ),
        Sample(
            ContractSigned(
                order_id=order,
                contract_id="contract-1",
                enterprise_id=e,
                provider_id=p,
                total_fen=5_000,
                subsidy_fen=1_000,
                payable_fen=4_000,
                deposit_fen=800,
                balance_fen=3_200,
                order_no=ORDER_NO,
                product_name=PRODUCT,
            ),
            order,
            (("enterprise", "contract_signed"),),
            ("定金 8 元", "40 元"),
        ),
        Sample(
            RemittanceRecorded(
                **common,
                remittance_id=remittance,
                enterprise_id=e,
                provider_id=p,
                amount_fen=800,
                bank_reference="BR20240813001",
            ),
            order,
            (("provider", "remittance_recorded"),),
            ("8 元", "BR20240813001"),
        ),
        Sample(
            PaymentReceived(
                order_id=order,
                remittance_id=remittance,
                amount_fen=800,
                paid_fen=800,
                outstanding_fen=3_200,
                deposit_met=True,
                fully_paid=False,
                enterprise_id=e,
                provider_id=p,
                order_no=ORDER_NO,
            ),
            order,
            (("enterprise", "remittance_confirmed"),),
            ("8 元", "32 元"),
        ),
        Sample(
            RemittanceRejected(
                **common,
                remittance_id=str(uuid.uuid4()),
                enterprise_id=e,
                provider_id=p,
                amount_fen=800,
                reason="未查到该笔到账",
            ),
            order,
            (("enterprise", "remittance_rejected"),),
            ("未查到该笔到账",),
        ),
        Sample(
            SettlementApproved(**common, settlement_id="s-1", provider_id=p, amount_fen=1_000),
            order,
            (("provider", "settlement_approved"),),
            ("10 元",),
        ),
        Sample(
            SettlementRejected(
                **common, settlement_id="s-1", provider_id=p, amount_fen=1_000, reason="发票抬头有误"
            ),
            order,
            (("provider", "settlement_rejected"),),
            ("发票抬头有误",),
        ),
        Sample(
            SettlementPaid(
                order_id=order,
                settlement_id="s-1",
                provider_id=p,
                amount_fen=1_000,
                payout_reference="DF2024120001",
                order_no=ORDER_NO,
            ),
            order,
            (("provider", "settlement_paid"),),
            ("10 元", "DF2024120001"),
        ),
        Sample(
            QuotaApplicationApproved(
                application_id="app-1",
                enterprise_id=e,
                voucher_type="general",
                approved_fen=5_000_000,
                voucher_id="v-1",
                voucher_no="SVC241206095302922",
            ),
            "app-1",
            (("enterprise", "quota_application_approved"),),
            ("通用券", "SVC241206095302922", "50,000 元"),
        ),
        Sample(
            QuotaApplicationRejected(
                application_id="app-2",
                enterprise_id=e,
                voucher_type="equipment_leasing",
                reason="合同凭证不清晰",
            ),
            "app-2",
            (("enterprise", "quota_application_rejected"),),
            ("直接设备租赁专项券", "合同凭证不清晰"),
        ),
        Sample(
            ProviderApproved(org_id=p, name="广西科智信息服务有限公司"),
            p,
            (("provider", "provider_application_approved"),),
            ("广西科智信息服务有限公司",),
        ),
        Sample(
            ProviderApplicationRejected(
                application_id="pa-1", org_id=p, org_name="广西科智信息服务有限公司", reason="资质证明已过期"
            ),
            p,
            (("provider", "provider_application_rejected"),),
            ("资质证明已过期",),
        ),
        Sample(
            ProductReviewed(
                product_id="product-1", provider_id=p, name=PRODUCT, approved=False, reason="价格说明不全"
            ),
            "product-1",
            (("provider", "product_rejected"),),
            (PRODUCT, "价格说明不全"),
        ),
    ]
