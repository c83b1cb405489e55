"""The voucher journeys of the manual, end to end: every service of the registry its own
process on the real PostgreSQL and RabbitMQ (one platform for the module), a client talking
only to the gateway, and ``voucher-invariants`` passing on the services' databases after
each journey."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from common.testing.data import valid_uscc
from common.testing.plugin import require_broker

from .conftest import Platform
from .journey import Journey, eventually, expect, platform_for_module

# Starting every service takes most of the time on a busy two-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(600)]

VOUCHER = 5_000_000  # the base tier: 5万元


@pytest_asyncio.fixture(scope="module")
async def platform(
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    url = require_broker(amqp_url_or_none, request)
    async with platform_for_module(postgres_server, url, Path(tmp_path_factory.mktemp("platform"))) as p:
        yield p


TIMEOUT_SECONDS = 6  # orders' acceptance and signing time-outs on the impatient platform


@pytest_asyncio.fixture(scope="module")
async def impatient_platform(
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    """A platform whose orders time out in seconds (7 and 30 days in production)."""
    url = require_broker(amqp_url_or_none, request)
    timeouts = {
        "ORDERS_ACCEPTANCE_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "ORDERS_SIGNING_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    }
    tmp = Path(tmp_path_factory.mktemp("impatient"))
    async with platform_for_module(postgres_server, url, tmp, timeouts) as p:
        yield p


@pytest_asyncio.fixture
async def j(platform: Platform) -> AsyncIterator[Journey]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield await Journey.start(platform, client)


def validate_signatures(pdf: bytes, ca_pem: str) -> list[tuple[str, bool, bool, bool]]:
    """Each signature of the PDF checked offline by pyHanko with the platform's CA as the only
    trust root: (field, intact, valid, trusted)."""
    _, _, der = pem.unarmor(ca_pem.encode())
    root = asn1_x509.Certificate.load(der)
    out = []
    for sig in PdfFileReader(io.BytesIO(pdf)).embedded_signatures:
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root], allow_fetching=False))
        out.append((str(sig.field_name), bool(status.intact), bool(status.valid), bool(status.trusted)))
    return out


async def test_an_enterprise_gets_its_general_voucher_and_sees_a_listed_product_at_its_price_after_voucher(
    j: Journey,
) -> None:
    # 服务券配额申请 -> 待审核 -> reviewed -> 去使用 with its number.
    enterprise, voucher = await j.enterprise_with_voucher()
    assert voucher["state"] == "active", voucher
    assert voucher["voucher_no"].startswith("SVC") and len(voucher["voucher_no"]) == 18
    assert voucher["total_fen"] == voucher["remaining_fen"] == VOUCHER
    assert voucher["used_fen"] == voucher["reserved_fen"] == 0

    # 申请入驻平台 -> reviewed; a product made, reviewed, in the public listing.
    provider = await j.provider()
    product = await j.product(provider)
    listing = await eventually(
        lambda: j.get("/products", q="专利分级"),
        lambda r: any(p["id"] == product["id"] for p in r.json()["items"]),
        "the product in the public listing",
    )
    item = next(p for p in listing.json()["items"] if p["id"] == product["id"])
    assert item["platform_price_fen"] == 7600 and item["market_price_fen"] == 8000
    assert item["provider_name"] == provider.name

    # Its detail with the enterprise's token: 券后价 38元 (76元, half, under 最高补贴 138元).
    detail = expect(await j.get(f"/products/{product['id']}", enterprise))
    preview = detail["voucher_preview"]
    assert preview["voucher_type"] == "general"
    assert preview["subsidy_fen"] == 3800 and preview["price_after_fen"] == 3800
    assert preview["max_subsidy_fen"] == 13800
    assert expect(await j.get(f"/products/{product['id']}")).get("voucher_preview") is None

    await j.invariants_hold()


async def test_an_enterprise_applying_the_moment_it_is_certified_gets_its_designated_tier(j: Journey) -> None:
    """Import a designation, register, certify, apply at once (with the token certification
    answers with): quota has not heard of the certification yet, and the tier is still the
    designation's 30万, never the flagged base tier."""
    uscc = valid_uscc()
    await j.designate(uscc, "国家级制造业单项冠军")
    org = await j.certified_now("广西单项冠军机械有限公司", uscc)
    applied = expect(await j.post("/me/quota-applications", org, {"voucher_type": "general"}), 201)
    assert (applied["flagged"], applied["tier"], applied["tier_fen"]) == (
        False,
        "国家级制造业单项冠军",
        30_000_000,
    )
    assert (applied["enterprise_name"], applied["uscc"]) == ("广西单项冠军机械有限公司", uscc)
    expect(await j.post(f"/admin/quota-applications/{applied['id']}/approve", j.reviewer, {}))
    voucher = await j.general_voucher(org)
    assert (voucher["state"], voucher["total_fen"], voucher["tier"]) == (
        "active",
        30_000_000,
        "国家级制造业单项冠军",
    )
    await j.invariants_hold()


async def test_an_order_with_the_voucher_is_contracted_signed_by_both_and_its_deduction_committed(
    j: Journey,
) -> None:
    # A name and terms beyond GB 2312 (traditional forms, 堃): the signed PDF must say them.
    enterprise, _ = await j.enterprise_with_voucher("广西柳州堃喆汽车零部件有限公司")
    provider = await j.provider()
    product = await j.product(provider)

    # 立即申请 with the voucher: 待接单, the subsidy reserved on the voucher.
    order = await j.order(enterprise, product["id"])
    assert order["status"] == "awaiting_acceptance" and order["order_no"].startswith("ORD")
    assert (order["amount_fen"], order["subsidy_fen"], order["payable_fen"]) == (7600, 3800, 3800)
    voucher = await j.general_voucher(enterprise)
    assert (voucher["reserved_fen"], voucher["remaining_fen"]) == (3800, VOUCHER - 3800)
    mine = expect(await j.get("/me/service-orders", provider, tab="awaiting_acceptance"))
    assert [i["id"] for i in mine["items"]] == [order["id"]] and mine["counts"]["awaiting_acceptance"] == 1

    # 双方接洽 (issue 13): the provider's hotline is public on its product page; on the order each
    # party sees the other's contact in full (the enterprise's: its legal representative's name
    # and the account's phone, as identity's token names them); another organisation no order.
    card = expect(await j.get(f"/products/{product['id']}"))["provider"]
    assert card["phone"] == "13812346433"
    contacts = {
        "enterprise": {"name": "王五", "phone": enterprise.session.phone},
        "provider": {"name": "李四", "phone": "13812346433"},
    }
    assert expect(await j.get(f"/orders/{order['id']}", provider))["contacts"] == contacts
    assert expect(await j.get(f"/orders/{order['id']}", enterprise))["contacts"] == contacts

    # 接单 -> the draft -> returned -> edited -> agreed; every version kept.
    terms = "甲方委托乙方提供专利分级评价服务，乙方出具评价报告。乙方無須退還已收款項。甲方代表：王堃。"
    agreed = await j.agreed_contract(
        enterprise, provider, order["id"], total_fen=7600, deposit_fen=1000, terms=terms
    )
    assert agreed["terms"] == terms + "服务期限为合同签订后30日内。"
    assert (agreed["subsidy_fen"], agreed["payable_fen"], agreed["deposit_fen"], agreed["balance_fen"]) == (
        3800,
        3800,
        1000,
        2800,
    )
    versions = expect(await j.get(f"/contracts/{agreed['id']}/versions", enterprise))["items"]
    assert len(versions) == 2 and versions[0]["return_reason"] == "请补充服务期限"

    # 制作签章 -> both sign (each after a face check for this contract) -> 待支付.
    await j.sealed(enterprise, provider)
    first = expect(await j.sign(enterprise, agreed["id"]))
    assert first["state"] == "agreed" and first["signatures"]["provider"] is None
    signed = expect(await j.sign(provider, agreed["id"]))
    assert signed["state"] == "signed"
    detail = await j.status(enterprise, order["id"], "awaiting_deposit")
    assert detail["status_label"] == "待支付"
    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["used_fen"] == 3800, "the deduction committed"
    )
    assert (voucher["reserved_fen"], voucher["remaining_fen"]) == (0, VOUCHER - 3800)

    # The signed PDF, downloaded; both PAdES signatures validated offline by pyHanko.
    r = await j.get(f"/contracts/{agreed['id']}/document", enterprise)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert hashlib.sha256(r.content).hexdigest() == signed["document_sha256"]
    ca = await j.get("/contracts/signing-ca", enterprise)
    assert ca.status_code == 200, ca.text
    checks = await asyncio.to_thread(validate_signatures, r.content, ca.text)
    assert len(checks) == 2 and all(intact and valid and trusted for _, intact, valid, trusted in checks), (
        checks
    )
    # What it says, character for character: the agreed terms and the enterprise's name.
    text = "".join("".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(r.content)).pages)
    for agreed_text in (
        agreed["terms"],
        "甲方（委托方）：广西柳州堃喆汽车零部件有限公司",
        "乙方無須退還已收款項",
    ):
        assert agreed_text in text, (agreed_text, text)
    tampered = bytearray(r.content)
    tampered[len(tampered) // 3] ^= 0x01
    broken = await asyncio.to_thread(validate_signatures, bytes(tampered), ca.text)
    assert not all(intact for _, intact, _v, _t in broken)
    # Anyone, without logging in, gets the same CA and has the platform check the file.
    assert (await j.get("/contracts/ca-certificate")).text == ca.text
    for pdf, valid in ((r.content, True), (bytes(tampered), False)):
        checked = await j.client.post(
            "/api/v1/contracts/verify", files={"file": ("contract.pdf", pdf, "application/pdf")}
        )
        assert checked.status_code == 200, checked.text
        verdict = checked.json()
        assert (verdict["valid"], verdict["modified_after_signing"]) == (valid, not valid), verdict
        assert verdict["signed_by_platform_ca"] and verdict["signature_count"] == 2

    await j.invariants_hold()


async def test_cancelling_while_awaiting_acceptance_and_a_provider_rejecting_give_the_reservation_back(
    j: Journey,
) -> None:
    enterprise, _ = await j.enterprise_with_voucher()
    provider = await j.provider()
    product = await j.product(provider)

    cancelled = await j.order(enterprise, product["id"])
    rejected = await j.order(enterprise, product["id"])
    voucher = await j.general_voucher(enterprise)
    assert voucher["reserved_fen"] == 2 * 3800

    expect(await j.post(f"/orders/{cancelled['id']}/cancel", enterprise, {"reason": "不需要了"}))
    expect(await j.post(f"/orders/{rejected['id']}/reject", provider, {"reason": "排期已满"}))
    for order_id in (cancelled["id"], rejected["id"]):
        detail = await j.status(enterprise, order_id, "cancelled")
        assert detail["status_label"] == "订单取消"
    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["reserved_fen"] == 0, "both reservations released"
    )
    assert voucher["remaining_fen"] == VOUCHER and voucher["used_fen"] == 0
    tabs = expect(await j.get("/me/orders", enterprise, tab="cancelled"))
    assert tabs["counts"]["cancelled"] == 2

    await j.invariants_hold()


async def test_cancelling_while_awaiting_the_contract_voids_it_and_releases_the_voucher(j: Journey) -> None:
    enterprise, _ = await j.enterprise_with_voucher()
    provider = await j.provider()
    product = await j.product(provider)
    order = await j.order(enterprise, product["id"])
    expect(await j.post(f"/orders/{order['id']}/accept", provider))
    await j.status(enterprise, order["id"], "awaiting_contract")
    draft = await j.contract(provider, order["id"])

    expect(await j.post(f"/orders/{order['id']}/cancel", enterprise, {"reason": "预算调整"}))
    await j.status(enterprise, order["id"], "cancelled")
    voided = await j.contract(enterprise, order["id"], lambda c: c["state"] == "voided")
    assert voided["id"] == draft["id"]
    await eventually(
        lambda: j.general_voucher(enterprise),
        lambda v: (v["reserved_fen"], v["remaining_fen"]) == (0, VOUCHER),
        "the reservation released",
    )
    # A voided contract is signed by no one.
    edit = await j.put(
        f"/contracts/{draft['id']}", provider, {"total_fen": 7600, "deposit_fen": 0, "terms": "条款"}
    )
    assert edit.status_code == 409, edit.text

    await j.invariants_hold()


async def test_a_cancellation_racing_the_second_signature_has_exactly_one_winner_and_the_voucher_agrees(
    j: Journey,
) -> None:
    enterprise, _ = await j.enterprise_with_voucher()
    provider = await j.provider()
    product = await j.product(provider)
    order = await j.order(enterprise, product["id"])
    agreed = await j.agreed_contract(enterprise, provider, order["id"], total_fen=7600, deposit_fen=1000)
    await j.sealed(enterprise, provider)
    expect(await j.sign(enterprise, agreed["id"]))
    token = await j.verification(provider, "sign_contract", agreed["id"])

    sign, cancel = await asyncio.gather(
        j.post(f"/contracts/{agreed['id']}/sign", provider, {"verification_token": token}),
        j.post(f"/orders/{order['id']}/cancel", enterprise, {"reason": "临时取消"}),
    )
    assert sign.status_code in (200, 409), sign.text
    assert cancel.status_code in (200, 409), cancel.text

    final = await j.order_in(
        enterprise,
        order["id"],
        lambda o: o["status"] in ("cancelled", "awaiting_deposit"),
        "the race decided",
    )
    contract = await j.contract(enterprise, order["id"], lambda c: c["state"] in ("signed", "voided"))
    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["reserved_fen"] == 0, "the reservation resolved"
    )
    if contract["state"] == "signed":  # the signature won: the cancellation was refused
        assert sign.status_code == 200 and final["status"] == "awaiting_deposit"
        assert voucher["used_fen"] == 3800
    else:  # the void won: the signature was refused
        assert sign.status_code == 409 and final["status"] == "cancelled"
        assert (voucher["used_fen"], voucher["remaining_fen"]) == (0, VOUCHER)

    await j.invariants_hold()


async def stats(j: Journey) -> dict[str, int]:
    return dict(expect(await j.get("/portal/stats")))


async def test_the_whole_journey_ends_with_the_voucher_used_and_settled_and_the_portal_counting_it(
    j: Journey,
) -> None:
    before = await stats(j)
    enterprise, provider, order, settlement = await j.settled_order()
    assert order["status"] == "evaluated" and order["status_label"] == "评价完成"
    assert order["evaluation"]["rating"] == 5
    steps = [s["step"] for s in order["timeline"]]
    assert len(steps) >= 8, steps
    assert settlement["amount_fen"] == 3800
    # finance's row names the parties and the product, copied along the signing's event
    assert (settlement["enterprise_name"], settlement["provider_name"], settlement["product_name"]) == (
        enterprise.name,
        provider.name,
        order["product_name"],
    )

    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["settled_fen"] == 3800, "the deduction settled"
    )
    assert (voucher["used_fen"], voucher["reserved_fen"], voucher["remaining_fen"]) == (
        3800,
        0,
        VOUCHER - 3800,
    )

    # /portal/stats (cached by the gateway for a few seconds) counts the contract, the
    # deduction and the settlement.
    after = await eventually(
        lambda: stats(j),
        lambda s: (
            s["signed_contracts"] >= before["signed_contracts"] + 1
            and s["deducted_fen"] >= before["deducted_fen"] + 3800
            and s["settled_fen"] >= before["settled_fen"] + 3800
        ),
        "the portal's figures",
        within=40,
    )
    assert after["stale"] == []

    await j.invariants_hold()


async def test_an_order_not_accepted_in_time_is_cancelled_and_a_contract_not_signed_in_time_is_voided(
    impatient_platform: Platform,
) -> None:
    async with httpx.AsyncClient(base_url=impatient_platform.gateway_url, timeout=30) as client:
        j = await Journey.start(impatient_platform, client)
        enterprise, _ = await j.enterprise_with_voucher()
        provider = await j.provider()
        product = await j.product(provider)

        unanswered = await j.order(enterprise, product["id"])
        unsigned = await j.order(enterprise, product["id"])
        expect(await j.post(f"/orders/{unsigned['id']}/accept", provider))
        await j.status(enterprise, unsigned["id"], "awaiting_contract")
        assert (await j.general_voucher(enterprise))["reserved_fen"] == 2 * 3800

        # Not accepted within the time-out: cancelled by the timer.
        timed_out = await j.status(enterprise, unanswered["id"], "cancelled", within=TIMEOUT_SECONDS + 20)
        assert timed_out["status_label"] == "订单取消"
        # Accepted but not signed in time: orders asks contracts, which voids the draft.
        await j.status(enterprise, unsigned["id"], "cancelled", within=TIMEOUT_SECONDS + 20)
        voided = await j.contract(enterprise, unsigned["id"], lambda c: c["state"] == "voided")
        assert voided["order_id"] == unsigned["id"]
        await eventually(
            lambda: j.general_voucher(enterprise),
            lambda v: (v["reserved_fen"], v["used_fen"], v["remaining_fen"]) == (0, 0, VOUCHER),
            "both reservations released",
        )

        await j.invariants_hold()


def generated_client(spec: bytes, where: Path) -> Any:
    """The typed Python client openapi-python-client generates from the gateway's merged
    document, as a client team would (binary answers as bytes), imported from ``where``."""
    (where / "openapi.json").write_bytes(spec)
    (where / "config.yaml").write_text(
        "package_name_override: voucher_client\npost_hooks: []\ncontent_type_overrides:\n"
        "  application/pdf: application/octet-stream\n  application/x-pem-file: application/octet-stream\n"
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            "openapi.json",
            "--output-path",
            "voucher_client",
            "--meta",
            "none",
            "--config",
            "config.yaml",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every schema and operation made it into the client (nothing "removed" or "skipped").
    assert "Unable to" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("voucher_client")
    finally:
        sys.path.remove(str(where))


async def test_a_client_generated_from_the_merged_openapi_drives_an_order_to_its_confirmed_deposit(
    j: Journey, tmp_path: Path
) -> None:
    """issue 15: the client teams generate their code from /openapi.json. Here the generated
    client submits the order, accepts it, writes, submits, agrees and signs the contract, and
    records and confirms the deposit; its typed answers carry what the raw API says."""
    spec = await j.client.get("/openapi.json")
    assert spec.status_code == 200
    vc = await asyncio.to_thread(generated_client, spec.content, tmp_path)
    from voucher_client.api.contracts import (  # type: ignore[import-not-found]
        contracts_agree,
        contracts_edit,
        contracts_order_contract,
        contracts_sign,
        contracts_submit,
    )
    from voucher_client.api.orders import (  # type: ignore[import-not-found]
        orders_accept_order,
        orders_order_detail,
        orders_submit_order,
    )
    from voucher_client.api.payments import (  # type: ignore[import-not-found]
        payments_confirm,
        payments_payment,
        payments_record_remittance,
    )
    from voucher_client.models import (  # type: ignore[import-not-found]
        ContractIn,
        OrderIn,
        Problem,
        RemittanceIn,
        VerificationTokenIn,
    )

    enterprise, _ = await j.enterprise_with_voucher("广西梧州生成客户端机械有限公司")
    provider = await j.provider()
    product = await j.product(provider)
    await j.sealed(enterprise, provider)

    def client(who: Any) -> Any:
        return vc.AuthenticatedClient(
            base_url=j.platform.gateway_url, token=who.session.access_token, timeout=30
        )

    async with client(enterprise) as ent, client(provider) as pro:
        made = await orders_submit_order.asyncio(
            client=ent, body=OrderIn(product_id=product["id"]), idempotency_key=str(uuid.uuid4())
        )
        assert made.amount_fen == 7600 and made.order_no.startswith("ORD"), made

        async def order_status() -> Any:
            return await orders_order_detail.asyncio(made.id, client=ent)

        order = await eventually(order_status, lambda o: o.status != "pending_voucher", "order decided")
        assert (order.status, order.subsidy_fen, order.payable_fen) == ("awaiting_acceptance", 3800, 3800)

        accepted = await orders_accept_order.asyncio(made.id, client=pro)
        assert not isinstance(accepted, Problem), accepted

        async def draft() -> Any:
            return await contracts_order_contract.asyncio(made.id, client=pro)

        contract = await eventually(draft, lambda c: not isinstance(c, Problem), "the draft contract")
        terms = "甲方委托乙方提供专利分级评价服务，乙方出具评价报告。服务期限为合同签订后30日内。"
        edited = await contracts_edit.asyncio(
            contract.id, client=pro, body=ContractIn(total_fen=7600, deposit_fen=1000, terms=terms)
        )
        assert (edited.total_fen, edited.deposit_fen, edited.terms) == (7600, 1000, terms), edited
        assert (await contracts_submit.asyncio(contract.id, client=pro)).state == "pending_review"
        # A problem comes back typed: the provider may not agree to its own contract.
        refused = await contracts_agree.asyncio(contract.id, client=pro)
        assert isinstance(refused, Problem) and (refused.status, refused.code) == (403, "wrong_party"), (
            refused
        )
        assert (await contracts_agree.asyncio(contract.id, client=ent)).state == "agreed"
        for who, api in ((enterprise, ent), (provider, pro)):
            token = await j.verification(who, "sign_contract", contract.id)
            signed = await contracts_sign.asyncio(
                contract.id, client=api, body=VerificationTokenIn(verification_token=token)
            )
            assert not isinstance(signed, Problem), signed
        assert signed.state == "signed"

        async def plan() -> Any:
            return await payments_payment.asyncio(made.id, client=ent)

        payment = await eventually(plan, lambda p: not isinstance(p, Problem), "the payment plan")
        assert (payment.payable_fen, payment.deposit_fen, payment.payable_upper) == (3800, 1000, "叁拾捌元整")
        remittance = await payments_record_remittance.asyncio(
            made.id,
            client=ent,
            body=RemittanceIn(
                amount_fen=1000,
                bank_reference="HX" + uuid.uuid4().hex[:12].upper(),
                payer_account="6228480000000000001",
                receipt_file_ids=[await j.file(enterprise, "汇款凭证.pdf")],
            ),
            idempotency_key=str(uuid.uuid4()),
        )
        assert remittance.amount_fen == 1000, remittance
        confirmed = await payments_confirm.asyncio(remittance.id, client=pro)
        assert confirmed.state == "confirmed", confirmed
    await j.status(enterprise, made.id, "awaiting_service")
    await j.invariants_hold()
