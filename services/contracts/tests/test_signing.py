"""E-seals (制作签章) and signatures: each party signs the agreed contract after a fresh
verification for it; both signatures are real PAdES signatures that pyHanko validates
offline against the platform's CA, and a changed byte breaks them."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

from PIL import Image

from contracts.signing import validate_pdf

API = "/api/v1"


def ca_pem(deal: Any) -> str:
    return str(deal.h["contracts"].app.state.contracts.ca.cert_pem)


async def test_the_owner_makes_the_seal_once_and_sees_its_image(deal: Any) -> None:
    r = await deal.seal(deal.enterprise)
    assert r.status_code == 201, r.text
    assert r.json()["org_name"] == "广西测试制造有限公司" and r.json()["certificate_serial"]
    r = await deal.client.get(f"{API}/me/seal", headers=deal.enterprise.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (400, 400)
    red = image.convert("RGBA").getpixel((200, 200))  # the star in the middle
    assert red[0] > 180 and red[1] < 80 and red[3] == 255

    again = await deal.seal(deal.enterprise)
    assert again.status_code == 409 and again.json()["code"] == "seal_exists"


async def test_a_seal_needs_the_owner_and_a_fresh_seal_verification_of_that_person(deal: Any) -> None:
    owner = deal.enterprise
    agent = deal.h.issuer.member(owner.org_id, role="agent")
    r = await deal.seal(agent)
    assert r.status_code == 403 and r.json()["code"] == "owner_required"

    def post(token: str) -> Any:
        return deal.client.post(f"{API}/me/seal", json={"verification_token": token}, headers=owner.headers)

    for token in (
        deal.h.issuer.idv(owner, purpose="sign_contract", object_id="x"),  # another purpose
        deal.h.issuer.idv(deal.provider, purpose="seal"),  # another person
        deal.h.issuer.idv(owner, purpose="seal", ttl=-60),  # expired
        "not-a-token",
    ):
        r = await post(token)
        assert r.status_code == 403 and r.json()["code"] in (
            "verification_invalid",
            "verification_expired",
        ), r.text
    assert (await deal.client.get(f"{API}/me/seal", headers=owner.headers)).status_code == 404

    token = deal.h.issuer.idv(owner, purpose="seal")
    assert (await post(token)).status_code == 201
    r = await post(token)
    assert r.status_code == 409 and r.json()["code"] == "verification_used"


async def test_both_parties_sign_and_the_pdf_carries_two_valid_pades_signatures(deal: Any) -> None:
    agreed = await deal.agreed()
    assert (await deal.seal(deal.enterprise)).status_code == 201
    assert (await deal.seal(deal.provider)).status_code == 201
    agreed_doc = (
        await deal.client.get(f"{API}/contracts/{deal.contract_id}/document", headers=deal.enterprise.headers)
    ).content
    assert hashlib.sha256(agreed_doc).hexdigest() == agreed["document_sha256"]

    r = await deal.sign(deal.enterprise)
    assert r.status_code == 200, r.text
    one = r.json()
    assert (
        one["state"] == "agreed"
        and one["signatures"]["enterprise"]["signed_sha256"] == agreed["document_sha256"]
    )
    assert one["signatures"]["provider"] is None
    assert await deal.events() == []  # nothing signed yet

    r = await deal.sign(deal.provider)
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["state"] == "signed" and signed["signed_at"]
    assert signed["signatures"]["provider"]["signed_sha256"] == one["document_sha256"]

    pdf = (
        await deal.client.get(f"{API}/contracts/{deal.contract_id}/document", headers=deal.provider.headers)
    ).content
    assert hashlib.sha256(pdf).hexdigest() == signed["document_sha256"]
    assert pdf.startswith(agreed_doc)  # incremental: the agreed bytes are untouched
    assert b"/FontFile2" in pdf  # the CJK TrueType font is embedded
    ca = (await deal.client.get(f"{API}/contracts/signing-ca", headers=deal.enterprise.headers)).text
    assert ca == ca_pem(deal) and ca.startswith("-----BEGIN CERTIFICATE-----")
    checks = await asyncio.to_thread(validate_pdf, pdf, ca)
    assert [c.field_name for c in checks] == ["enterprise", "provider"]
    assert all(c.intact and c.valid and c.trusted and c.bottom_line for c in checks), checks
    assert [c.signer for c in checks] == ["广西测试制造有限公司", "南宁数字化服务中心"]

    tampered = bytearray(pdf)
    at = len(agreed_doc) // 2
    tampered[at] ^= 0x01
    broken = await asyncio.to_thread(validate_pdf, bytes(tampered), ca_pem(deal))
    assert not any(c.intact for c in broken)

    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_signed"]
    signatures = [p for t, p in await deal.events(notices=True) if t == "contracts.contract_party_signed"]
    assert [s["party"] for s in signatures] == ["enterprise", "provider"]  # each one, for orders' rows
    p = events[0][1]
    assert (p["total_fen"], p["subsidy_fen"], p["payable_fen"], p["deposit_fen"], p["balance_fen"]) == (
        30_000_000,
        9_000_000,
        21_000_000,
        6_000_000,
        15_000_000,
    )
    assert p["contract_id"] == deal.contract_id and p["document_sha256"] == signed["document_sha256"]
    assert p["product_name"] == "企业数字化诊断服务"  # the enterprise's "to pay" notice names it
    # payments copies the parties' names onto its rows for finance's lists
    assert (p["enterprise_name"], p["provider_name"]) == ("广西测试制造有限公司", "南宁数字化服务中心")

    r = await deal.client.get(f"{API}/orders/{deal.order_id}/contract", headers=deal.h.issuer.staff().headers)
    assert r.json()["state"] == "signed"


async def test_a_signature_needs_a_fresh_verification_for_this_contract_by_this_person(deal: Any) -> None:
    await deal.drafted()
    await deal.seal(deal.enterprise)
    r = await deal.sign(deal.enterprise)
    assert r.status_code == 409 and r.json()["code"] == "contract_state"  # not agreed yet
    await deal.put()
    await deal.act("submit", deal.provider)
    await deal.act("agree", deal.enterprise)

    issuer, who = deal.h.issuer, deal.enterprise
    for token in (
        issuer.idv(who, purpose="seal"),  # another purpose
        issuer.idv(who, purpose="sign_contract", object_id="another-contract"),  # another contract
        issuer.idv(deal.provider, purpose="sign_contract", object_id=deal.contract_id),  # another person
    ):
        r = await deal.sign(who, token)
        assert r.status_code == 403 and r.json()["code"] == "verification_invalid", r.text
    assert (await deal.contract()).json()["signatures"]["enterprise"] is None

    r = await deal.sign(deal.provider)  # the provider has no seal yet
    assert r.status_code == 409 and r.json()["code"] == "seal_required"

    token = issuer.idv(who, purpose="sign_contract", object_id=deal.contract_id)
    assert (await deal.sign(who, token)).status_code == 200
    r = await deal.sign(who, token)
    assert r.status_code == 409 and r.json()["code"] == "verification_used"
    r = await deal.sign(who)
    assert r.status_code == 409 and r.json()["code"] == "already_signed"

    stranger = issuer.member(caps=("enterprise",))
    r = await deal.sign(stranger)
    assert r.status_code == 404


async def test_a_suspended_party_cannot_sign(deal: Any) -> None:
    await deal.agreed()
    await deal.seal(deal.enterprise)
    await deal.seal(deal.provider)
    await deal.suspend(deal.provider)
    r = await deal.sign(deal.provider)
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert (await deal.contract()).json()["signatures"]["provider"] is None
