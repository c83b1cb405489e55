"""Who a notice is for, who sees it and what it says: demands.domain.notifications."""

from __future__ import annotations

import re

import pytest
from demands.domain.notifications import (
    EVENT_TYPES,
    RULES,
    STREAM_MAX,
    Draft,
    Reader,
    Recipient,
    drafts_for,
    roles_seen_by,
    sees,
    stream_of,
)
from demands.handlers import build_consumer

from common import registry
from common.events import ContractSigned, OrderCompleted, PaymentReceived, ServiceCompleted

from ..notification_samples import samples

E, P = "org-enterprise", "org-provider"
ALL = samples(E, P)


@pytest.mark.parametrize("sample", ALL, ids=[s.payload.event_type for s in ALL])
def test_each_event_tells_the_party_that_must_act_in_chinese_with_its_snapshot(sample) -> None:  # type: ignore[no-untyped-def]
    drafts = drafts_for(sample.payload)
    party = {"enterprise": E, "provider": P}
    assert [(d.to.org_id, d.kind) for d in drafts] == [(party[who], kind) for who, kind in sample.told]
    for d in drafts:
        assert re.search(r"[\u4e00-\u9fff]", d.title) and re.search(r"[\u4e00-\u9fff]", d.body)
        assert d.link.startswith("/api/v1/")
        for word in sample.words:
            assert word in d.body, (word, d.body)


def test_every_rule_has_a_sample_and_the_consumer_handles_exactly_what_the_registry_binds() -> None:
    assert {type(s.payload) for s in ALL} == set(RULES)
    assert set(EVENT_TYPES) <= set(registry.service("demands").consumes)
    assert set(build_consumer().handlers) == set(registry.service("demands").consumes)


@pytest.mark.parametrize(
    ("to", "reader", "seen"),
    [
        (Recipient(user_id="u1"), Reader("u1", "owner", "o1"), True),
        (Recipient(user_id="u1"), Reader("u2", "owner", "o1"), False),
        (Recipient(org_id="o1"), Reader("u1", "owner", "o1"), True),
        (Recipient(org_id="o1"), Reader("u2", "agent", "o1"), True),  # each member
        (Recipient(org_id="o1"), Reader("u3", "owner", "o2"), False),
        (Recipient(org_id="o1"), Reader("u4", "reviewer", "o1"), False),  # staff are no members
        (Recipient(role="reviewer"), Reader("u5", "reviewer"), True),
        (Recipient(role="reviewer"), Reader("u6", "administrator"), True),  # may do everything
        (Recipient(role="reviewer"), Reader("u7", "finance"), False),
        (Recipient(role="finance"), Reader("u8", "owner", "o1"), False),
    ],
)
def test_who_sees_a_notice(to: Recipient, reader: Reader, seen: bool) -> None:
    assert sees(reader, to) is seen


def test_an_administrator_sees_every_staff_role_and_members_none() -> None:
    assert set(roles_seen_by("administrator")) == {"reviewer", "finance", "administrator"}
    assert roles_seen_by("reviewer") == ("reviewer",)
    assert roles_seen_by("owner") == () and roles_seen_by("agent") == ()


@pytest.mark.parametrize(
    "recipient",
    [{}, {"user_id": "u", "org_id": "o"}, {"org_id": "o", "role": "reviewer"}, {"role": "owner"}],
)
def test_a_notice_has_exactly_one_recipient(recipient: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Recipient(**recipient)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "Not A Code"},
        {"kind": ""},
        {"title": ""},
        {"title": "长" * 101},
        {"body": ""},
        {"link": "orders/1"},
    ],
)
def test_a_draft_out_of_the_rules_is_refused(fields: dict[str, str]) -> None:
    values = {
        "kind": "demand_approved",
        "title": "需求已发布",
        "body": "您的需求已发布。",
        "link": "/api/v1/x",
    }
    with pytest.raises(ValueError):
        Draft(**{**values, **fields}, to=Recipient(user_id="u"))  # type: ignore[arg-type]


def test_nothing_to_tell_when_nothing_is_asked() -> None:
    """No payment when the voucher covers everything; no claim without a subsidy; no
    recipient in a payment from an older publisher."""
    signed = ContractSigned(
        order_id="o", contract_id="c", enterprise_id=E, provider_id=P, total_fen=100,
        subsidy_fen=100, payable_fen=0, deposit_fen=0, balance_fen=0,
    )  # fmt: skip
    completed = OrderCompleted(
        order_id="o", order_no="ORD1", enterprise_id=E, provider_id=P, product_id="p",
        contract_id="c", subsidy_fen=0, total_fen=100,
    )  # fmt: skip
    old = PaymentReceived(
        order_id="o", remittance_id="r", amount_fen=1, paid_fen=1, outstanding_fen=0,
        deposit_met=True, fully_paid=True,
    )  # fmt: skip
    assert drafts_for(signed) == drafts_for(completed) == drafts_for(old) == []


@pytest.mark.parametrize(
    ("status", "ending"),
    [
        ("awaiting_balance", "请支付尾款，并对本次服务进行评价。"),
        ("completed", "请对本次服务进行评价。"),
        ("evaluated", "的服务。"),
    ],
)
def test_a_completed_service_asks_for_what_is_left(status: str, ending: str) -> None:
    (draft,) = drafts_for(
        ServiceCompleted(order_id="o", provider_id=P, enterprise_id=E, order_no="ORD1", status=status)
    )
    assert draft.body.endswith(ending)


def test_streams_fit_the_guard_and_separate_subjects() -> None:
    by_type = {type(s.payload): s.payload for s in ALL}
    streams = {stream_of(p.event_type, p) for p in by_type.values()}
    assert all(0 < len(s) <= STREAM_MAX for s in streams)
    recorded = by_type[next(t for t in by_type if t.__name__ == "RemittanceRecorded")]
    other = recorded.model_copy(update={"remittance_id": "another"})
    assert stream_of(recorded.event_type, recorded) != stream_of(other.event_type, other)
