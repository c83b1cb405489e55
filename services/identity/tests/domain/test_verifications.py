"""identity.domain.verifications: the pure rules behind the verification routes (what a check is
for, its token's life, what a vendor's answer decides)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.rules import Refusal
from identity.domain import verifications

from .samples import NOW


@pytest.mark.parametrize(
    ("purpose", "object_id", "why"),
    [
        ("sign_contract", None, "签署合同的人脸认证须指明合同编号"),
        ("sign_contract", "", "签署合同的人脸认证须指明合同编号"),
        ("seal", "c-1", "制作签章的人脸认证无需指定认证对象"),
        ("sign_contract", "c-1", None),
        ("seal", None, None),
    ],
)
def test_a_contracts_signature_is_verified_for_one_contract_a_seal_for_none(
    purpose: str, object_id: str | None, why: str | None
) -> None:
    if why is None:
        verifications.check_object(purpose, object_id)
        return
    with pytest.raises(Refusal) as refused:
        verifications.check_object(purpose, object_id)
    assert refused.value == Refusal("validation_error", detail=why, field="object_id")


def test_a_passed_checks_token_lives_from_the_moment_it_passed() -> None:
    life = verifications.verification_token_life
    assert life(state="pending", decided_at=None, now=NOW, ttl_seconds=600) is None
    assert life(state="failed", decided_at=NOW, now=NOW, ttl_seconds=600) is None
    assert life(state="passed", decided_at=NOW, now=NOW, ttl_seconds=600) == 600
    assert life(state="passed", decided_at=NOW, now=NOW + timedelta(seconds=590), ttl_seconds=600) == 10
    assert life(state="passed", decided_at=NOW, now=NOW + timedelta(seconds=601), ttl_seconds=600) == 0


VENDOR_SAYS = {
    "outcome": "passed",
    "verification_id": "v-1",
    "echoed_id": "v-1",
    "expected_name": "张三丰",
    "expected_id_number": "45010219850312001x",
    "result_name": "张 三丰",
    "result_id_number": "45010219850312001X",
}


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, ("passed", "passed")),  # the case of the X and a space in the name do not matter
        ({"outcome": "pending"}, (None, "pending")),
        ({"outcome": "failed"}, ("failed", "vendor_failed")),
        ({"echoed_id": "v-2"}, ("failed", "another_check")),
        ({"echoed_id": None}, ("failed", "another_check")),
        ({"result_id_number": "450102199001010011"}, ("failed", "another_person")),
        ({"result_name": "李四"}, ("failed", "another_person")),
        ({"result_id_number": None}, ("failed", "another_person")),
        ({"expected_id_number": None}, ("failed", "no_subject")),
    ],
)
def test_a_vendors_pass_passes_only_the_same_check_for_the_same_person(
    changes: dict[str, str | None], decision: tuple[str | None, str]
) -> None:
    assert verifications.vendor_decision(**{**VENDOR_SAYS, **changes}) == decision


KEY = "c3ViamVjdC1kaWdlc3Qta2V5LWZvci10aGUtdGVzdHMh"  # base64, 32 bytes
STARTED_FOR = verifications.subject_digest("张三丰", "45010219850312001X", KEY)
# Aliyun: the result names neither the person nor the check.
SILENT_VENDOR_SAYS = {
    **VENDOR_SAYS,
    "echoed_id": None,
    "result_name": None,
    "result_id_number": None,
    "echoes_subject": False,
    "started_for": STARTED_FOR,
    "now_for": verifications.subject_digest("张 三丰", "45010219850312001x", KEY),
}


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, ("passed", "passed")),  # normalised as the echoed person is
        ({"outcome": "pending"}, (None, "pending")),
        ({"outcome": "failed"}, ("failed", "vendor_failed")),
        (
            {"now_for": verifications.subject_digest("张三丰", "450102199001010011", KEY)},
            ("failed", "another_person"),
        ),
        ({"started_for": None}, ("failed", "no_subject")),  # nothing tells whom the vendor compared
        ({"expected_name": None}, ("failed", "no_subject")),
    ],
)
def test_a_silent_vendors_pass_passes_only_for_the_person_the_check_was_started_for(
    changes: dict[str, object], decision: tuple[str | None, str]
) -> None:
    assert verifications.vendor_decision(**{**SILENT_VENDOR_SAYS, **changes}) == decision


def test_an_echoing_vendors_pass_also_fails_when_the_person_changed_since_the_start() -> None:
    other = verifications.subject_digest("张三丰", "450102199001010011", KEY)
    decision = verifications.vendor_decision(**VENDOR_SAYS, started_for=other, now_for=STARTED_FOR)
    assert decision == ("failed", "another_person")
