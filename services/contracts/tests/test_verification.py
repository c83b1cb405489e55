"""A contract anyone can verify: the signing CA's certificate and POST /contracts/verify answer
without a token, and say of a really signed contract that both signatures are the platform
CA's, intact and unchanged since; of a changed byte, an appended change or another CA's
signature that they are not; and refuse what is not a signed PDF with a problem."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from common.rules import Refusal
from contracts import verification
from contracts.config import Settings
from contracts.context import ContractsContext
from contracts.document import ContractText, render_contract, seal_png
from contracts.service import seals
from contracts.signing import SigningCA, add_signature_fields, sign_pdf
from contracts.verification import verify_pdf

API = "/api/v1"
PARTIES = (("enterprise", "甲公司"), ("provider", "乙公司"))


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"  # nothing here goes through the broker


# --- pure: contracts.verification ----------------------------------------------------------------


def _rendered() -> bytes:
    t = ContractText(
        "c", "ORD9", 1, "甲公司", "乙公司", "诊断", "企业诊断", 100, 0, 100, 0, 100, "条款", None, "平台"
    )
    rendered = render_contract(t)
    return add_signature_fields(rendered.pdf, rendered.fields)


def _signed_by(ca: SigningCA, pdf: bytes, parties: tuple[tuple[str, str], ...] = PARTIES) -> bytes:
    for field_name, name in parties:
        issued = ca.issue(f"org-{field_name}", name)
        pdf = sign_pdf(
            pdf,
            field_name=field_name,
            key_pem=issued.key_pem,
            cert_pem=issued.cert_pem,
            ca_cert_pem=ca.cert_pem,
            seal_png=seal_png(name),
            signer_name=name,
        )
    return pdf


def _another_ca() -> SigningCA:
    """A CA someone made on their own, with the platform CA's very name."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "广西制造业企业服务券平台电子签章 CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "广西制造业企业服务券平台电子签章 CA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SigningCA(key, cert)


PLATFORM = SigningCA.generate()
AGREED = _rendered()
SIGNING = datetime.now(UTC).replace(microsecond=0)  # the PDF's time has whole seconds
SIGNED = _signed_by(PLATFORM, AGREED)  # at collection: the test may run minutes later


def test_a_contract_both_parties_signed_is_valid_and_unchanged_and_names_who_signed_when() -> None:
    report = verify_pdf(SIGNED, PLATFORM.cert_pem)
    assert report.valid and report.signed_by_platform_ca and not report.modified_after_signing
    assert report.signature_count == 2 and report.summary.startswith("文件共有 2 个签名，均由本平台")
    first, second = report.signatures
    assert [s.field_name for s in report.signatures] == ["enterprise", "provider"]
    assert [s.signer_name for s in report.signatures] == ["甲公司", "乙公司"]
    for s in report.signatures:
        assert s.intact and s.cryptographically_valid and s.trusted and s.issued_by_platform_ca and s.valid
        assert s.signed_at is not None and SIGNING <= s.signed_at <= datetime.now(UTC)
        assert s.reason == "签署服务合同" and s.error is None
    # The first signature covers its revision; the second party's signature came after it.
    assert (first.coverage, first.modification_level) == ("entire_revision", "form_filling")
    assert (second.coverage, second.modification_level) == ("entire_file", "none")
    assert first.summary == "「甲公司」的签名有效，签署后文件未被修改（其后仅追加了签名）"


def test_one_byte_changed_inside_the_signed_range_breaks_both_signatures() -> None:
    tampered = bytearray(SIGNED)
    tampered[len(AGREED) // 2] ^= 0x01
    report = verify_pdf(bytes(tampered), PLATFORM.cert_pem)
    assert not report.valid and report.modified_after_signing
    assert report.signed_by_platform_ca  # the certificates are still the platform's
    assert not any(s.intact or s.valid for s in report.signatures)
    assert all("已被改动" in s.summary for s in report.signatures)


def test_a_change_appended_after_both_signatures_is_seen_although_every_signature_is_intact() -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(SIGNED))
    box = writer.add_object(generic.StreamObject(stream_data=b"1 1 1 rg 50 50 300 40 re f"))
    writer.add_stream_to_page(0, box)  # a white box over the page
    out = io.BytesIO()
    writer.write(out)
    report = verify_pdf(out.getvalue(), PLATFORM.cert_pem)
    assert not report.valid and report.modified_after_signing
    assert all(s.intact and s.trusted for s in report.signatures)
    assert [s.modification_level for s in report.signatures] == ["other", "other"]


def test_a_contract_signed_under_another_ca_of_the_same_name_is_not_the_platforms() -> None:
    forged = _signed_by(_another_ca(), AGREED)
    report = verify_pdf(forged, PLATFORM.cert_pem)
    assert not report.valid and not report.signed_by_platform_ca and not report.modified_after_signing
    assert all(s.intact and not s.trusted and not s.issued_by_platform_ca for s in report.signatures)
    assert "并非全部由本平台" in report.summary


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (b"PK\x03\x04 a zip, not a pdf", verification.NOT_PDF),
        (b"%PDF-1.7\n%garbage and no cross-reference table", verification.UNREADABLE),
        (AGREED, verification.UNSIGNED),  # empty signature fields only
    ],
)
def test_what_is_not_a_readable_signed_pdf_is_refused(data: bytes, refusal: str) -> None:
    with pytest.raises(Refusal) as raised:
        verify_pdf(data, PLATFORM.cert_pem)
    assert raised.value == Refusal(refusal)


# --- the API, on a contract signed the way the service signs ------------------------------------


def _platform_ca(deal: Any) -> str:
    return str(deal.h["contracts"].app.state.contracts.ca.cert_pem)


async def _verify(client: httpx.AsyncClient, pdf: bytes, name: str = "contract.pdf") -> httpx.Response:
    return await client.post(f"{API}/contracts/verify", files={"file": (name, pdf, "application/pdf")})


async def test_anyone_verifies_a_signed_contract_without_logging_in(deal: Any) -> None:
    signed = await deal.signed()
    pdf = (
        await deal.client.get(f"{API}/contracts/{deal.contract_id}/document", headers=deal.enterprise.headers)
    ).content

    r = await _verify(deal.client, pdf)  # no token
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["signed_by_platform_ca"] and not body["modified_after_signing"]
    assert body["sha256"] == signed["document_sha256"] and body["signature_count"] == 2
    assert [s["field_name"] for s in body["signatures"]] == ["enterprise", "provider"]
    assert [s["signer_name"] for s in body["signatures"]] == ["广西测试制造有限公司", "南宁数字化服务中心"]
    for s in body["signatures"]:
        assert s["intact"] and s["cryptographically_valid"] and s["trusted"] and s["valid"], s
        assert s["issued_by_platform_ca"] and s["signed_at"] and not s["modified_after_signing"]

    tampered = bytearray(pdf)
    tampered[len(pdf) // 3] ^= 0x01
    r = await _verify(deal.client, bytes(tampered))
    assert r.status_code == 200, r.text
    assert not r.json()["valid"] and r.json()["modified_after_signing"]

    forged = await asyncio.to_thread(_signed_by, _another_ca(), AGREED)
    r = await _verify(deal.client, forged)
    assert r.status_code == 200 and not r.json()["signed_by_platform_ca"] and not r.json()["valid"]


async def test_the_ca_certificate_is_public_and_is_the_one_that_verifies_the_signatures(deal: Any) -> None:
    await deal.signed()
    pdf = (
        await deal.client.get(f"{API}/contracts/{deal.contract_id}/document", headers=deal.provider.headers)
    ).content

    r = await deal.client.get(f"{API}/contracts/ca-certificate")  # no token
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-pem-file"
    assert r.text == _platform_ca(deal) and r.text.startswith("-----BEGIN CERTIFICATE-----")
    der = await deal.client.get(f"{API}/contracts/ca-certificate", params={"format": "der"})
    assert der.status_code == 200 and der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == x509.load_pem_x509_certificate(r.content)

    report = await asyncio.to_thread(verify_pdf, pdf, r.text)
    assert report.valid and report.signature_count == 2
    bad = await deal.client.get(f"{API}/contracts/ca-certificate", params={"format": "p12"})
    assert bad.status_code == 422


async def test_a_file_that_is_not_a_signed_pdf_gets_a_problem_and_changes_nothing(deal: Any) -> None:
    signed = await deal.signed()
    events = await deal.events()
    for data, code in (
        (b"\x89PNG\r\n\x1a\n not a contract", "not_a_pdf"),
        (b"%PDF-1.7\n broken", "pdf_unreadable"),
        (b"", "empty_file"),
    ):
        r = await _verify(deal.client, data)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == code and problem["errors"][0]["field"] == "file", problem
        assert problem["detail"] and problem["type"].endswith(code)
    agreed_only = await asyncio.to_thread(_rendered)
    r = await _verify(deal.client, agreed_only)
    assert r.status_code == 422 and r.json()["code"] == "pdf_not_signed"
    r = await deal.client.post(f"{API}/contracts/verify", json={"file": "x"})
    assert r.status_code == 422  # no file at all: the field is named

    assert await deal.events() == events
    after = (await deal.contract()).json()
    assert after["state"] == "signed" and after["document_sha256"] == signed["document_sha256"]


async def test_a_pdf_over_the_limit_is_refused_before_it_is_read(deal: Any) -> None:
    limit = deal.h["contracts"].app.state.contracts.settings.verify_max_bytes
    r = await _verify(deal.client, b"%PDF-1.7\n" + b"0" * limit)
    assert r.status_code == 413 and r.json()["code"] in ("file_too_large", "payload_too_large"), r.text


async def test_when_every_verification_slot_is_taken_a_caller_waits_then_is_told_to_retry(deal: Any) -> None:
    ctx = deal.h["contracts"].app.state.contracts
    ctx.settings.verify_wait_seconds = 0.2
    for _ in range(ctx.settings.verify_concurrency):
        await ctx.verify_slots.acquire()  # others' uploads being checked
    r = await _verify(deal.client, SIGNED)
    assert r.status_code == 503 and r.json()["code"] == "verification_busy" and r.headers["retry-after"]
    ctx.verify_slots.release()
    r = await _verify(deal.client, SIGNED)
    assert r.status_code == 200 and not r.json()["signed_by_platform_ca"]  # another CA's contract


async def test_a_caller_who_hangs_up_keeps_its_slot_until_its_check_is_done() -> None:
    ctx = ContractsContext(Settings(environment="development", verify_concurrency=1))
    ctx.ca = PLATFORM
    first = asyncio.create_task(seals.verify_document(ctx, SIGNED))
    await asyncio.sleep(0.01)  # its check runs in a thread (about 0.1 s)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert ctx.verify_slots.locked()  # the thread still works: no second check starts yet
    report = await seals.verify_document(ctx, SIGNED)  # waits for the slot, then checks
    assert report.valid and not ctx.verify_slots.locked()
