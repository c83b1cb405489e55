"""The deal through the portal, as a browser without scripts sees it: the demo enterprise
orders a demo provider's product with its general voucher; the provider accepts, drafts the
contract and submits it; the enterprise returns it, the provider amends it, the enterprise
agrees; both make their seals and sign after the simulated face check; the enterprise pays
the deposit and the balance in two transfers with a receipt; the provider confirms each,
serves; the enterprise evaluates. The saga between the services is asynchronous: the pages
are polled until they show the next state."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import httpx
import pytest

from common import demo
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import PortalClient

# the platform starts within the test's time (eight processes on a busy machine), then the whole deal
pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(480)]

PRODUCT = "企业管理诊断咨询"  # the demo provider's: 平台销售价 50,000 元, 最高补贴 25,000 元 (50%)
_IDEM = re.compile(r'name="idempotency_key" value="([^"]+)"')
_ORDER_URL = re.compile(r"/orders/([0-9a-fA-F-]{36})$")


async def post(client: PortalClient, action: str, files: Any = None, **fields: Any) -> httpx.Response:
    """Posts a form of the page last opened (its CSRF token) to ``action``."""
    data = {"csrf_token": client.csrf(), **fields}
    client.last = await client.http.post(action, data=data, files=files)
    return client.last


def text_of(page: httpx.Response) -> str:
    """The page's words without tags (what a reader sees, in one line)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


def receipt_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def signed_in(portal: Platform, phone: str, password: str) -> PortalClient:
    client = PortalClient(portal.gateway_url)
    await client.login(phone, password)
    return client


async def face_check(client: PortalClient, page: httpx.Response, outcome: str = "pass") -> httpx.Response:
    """On the simulated 人脸认证 page the portal sent the user to: 通过 (or 不通过)."""
    assert "/verify/" in str(page.url), str(page.url)
    assert "人脸认证" in page.text and "通过" in page.text and "不通过" in page.text
    # Simulated (development): no vendor page, so neither its link nor its QR code.
    assert "qr.svg" not in page.text and "我已完成人脸认证" not in page.text
    found = re.search(rf'action="(/verify/[^"]+/{outcome}\?next=[^"]+)"', page.text)
    assert found, page.text[:2000]
    return await post(client, found.group(1).replace("&amp;", "&"))


async def make_seal(client: PortalClient, name: str) -> None:
    page = await client.get("/me/seal")
    assert "制作签章" in page.text and "开始身份认证" in page.text
    verify = await post(client, "/me/seal", agree="1")
    done = await face_check(client, verify)
    assert "电子签章已制作完成" in done.text, text_of(done)[:2000]
    assert f'alt="{name} 电子签章"' in done.text
    image = await client.get("/me/seal/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


async def test_the_whole_deal_through_the_portal(portal: Platform) -> None:
    ent = await signed_in(portal, demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    prov = await signed_in(portal, demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    staff = await signed_in(portal, ADMIN_PHONE, ADMIN_PASSWORD)
    try:
        await walk_the_deal(ent, prov, staff)
    finally:
        for client in (ent, prov, staff):
            await client.aclose()


async def walk_the_deal(ent: PortalClient, prov: PortalClient, staff: PortalClient) -> None:
    found = (await ent.http.get("/api/v1/products", params={"q": PRODUCT})).json()["items"]
    product = next(p for p in found if p["name"] == PRODUCT)

    # --- 订单详情 and 提交订单 (with the general voucher) -----------------------------------
    page = await ent.get("/orders/new", product_id=product["id"])
    seen = text_of(page)
    for text in (
        "订单详情",
        PRODUCT,
        demo.PROVIDER.name,
        "勾选使用补贴券",
        "服务金额",
        "服务券抵扣金额",
        "服务券余额剩余",
        "实付金额",
        "实付大写金额",
        "提交订单",
        "申请服务",
        "评价服务",
    ):
        assert text in seen, text
    assert "服务金额 50,000 元" in seen and "服务券抵扣金额 25,000 元" in seen
    assert "服务券余额剩余 75,000 元" in seen and "贰万伍仟元整" in seen
    key = _IDEM.search(page.text)
    assert key, "the form carries its idempotency key"
    form = {"product_id": product["id"], "use_voucher": "true", "idempotency_key": key.group(1)}
    first = await post(ent, "/orders", **form)
    again = await post(ent, "/orders", **form)  # a double submit of the same form: one order
    assert first.status_code == 200 and str(first.url) == str(again.url)
    matched = _ORDER_URL.search(str(first.url))
    assert matched, str(first.url)
    order_id = matched.group(1)
    order_page = f"/orders/{order_id}"
    assert "订单已提交" in first.text
    seen = text_of(first)
    assert (
        "待接单" in seen
        and "50,000" in seen
        and 'class="current" aria-current="step">服务机构接单' in first.text
    )

    mine = await ent.until("/me/orders?tab=awaiting_acceptance", '待接单 <span class="count">(1)</span>')
    seen = text_of(mine)
    assert "我购买的服务" in seen and demo.PROVIDER.name in seen and "取消订单" in seen
    order_no = re.search(r"订单编号 ([A-Z0-9]+)", text_of(first))
    assert order_no and order_no.group(1) in seen

    # --- the provider: 我的服务订单, 接单 ---------------------------------------------------
    theirs = await prov.until("/me/service-orders", demo.ENTERPRISE.name, "接单", "拒绝")
    assert "我的服务订单" in theirs.text
    await prov.until(order_page, f'action="/orders/{order_id}/accept"')
    accepted = await post(prov, f"/orders/{order_id}/accept")
    assert "已接单" in accepted.text

    # --- 起草合同, 提交 ------------------------------------------------------------------------
    await prov.until(order_page, "起草合同")
    edit = f"/orders/{order_id}/contract/edit"
    await prov.get(edit)
    saved = await post(
        prov,
        edit,
        total_fen="50000",
        deposit_fen="10000",
        terms="第一条 服务内容：企业管理诊断咨询。",
        then="submit",
    )
    assert "合同已提交给企业确认" in saved.text
    seen = text_of(saved)
    assert "待确认" in seen and "合同总金额 50,000 元" in seen and "合同定金 10,000 元" in seen

    # --- the enterprise returns it from its list: 退回修改 with the reason ------------------
    # the row offers the contract's buttons from the order's own actions (no call per row)
    row_return = f'action="/orders/{order_id}/contract/return?next='
    listing = await ent.until("/me/orders?tab=awaiting_contract", row_return)
    assert f'action="/orders/{order_id}/contract/agree?next=' in listing.text
    assert f'href="/orders/{order_id}#contract">查看合同' in listing.text
    theirs = await prov.get("/me/service-orders?tab=awaiting_contract")
    assert (
        f'href="/orders/{order_id}#contract">查看合同' in theirs.text and "contract/agree" not in theirs.text
    )
    page = await ent.get(order_page)
    assert "第一条 服务内容" in page.text and "同意" in page.text
    found = re.search(rf'action="(/orders/{order_id}/contract/return\?next=[^"]+)"', listing.text)
    assert found
    await ent.get("/me/orders?tab=awaiting_contract")
    returned = await post(ent, found.group(1).replace("&amp;", "&"), reason="请补充验收标准")
    assert "合同已退回服务机构修改" in returned.text and "/me/orders" in str(returned.url)
    page = await ent.get(order_page)
    assert "请补充验收标准" in page.text

    await prov.until("/me/service-orders", f'href="/orders/{order_id}/contract/edit">拟定合同')
    page = await prov.get(edit)
    assert "修改合同" in page.text and "请补充验收标准" in page.text
    amended = await post(
        prov,
        edit,
        total_fen="50000",
        deposit_fen="10000",
        terms="第一条 服务内容：企业管理诊断咨询。\n第二条 验收标准：双方确认诊断报告。",
        then="submit",
    )
    seen = text_of(amended)
    assert "第 1 版" in seen and "退回修改：请补充验收标准" in seen and "第 2 版" in seen

    # --- 同意 -----------------------------------------------------------------------------------
    await ent.until("/me/orders", f'action="/orders/{order_id}/contract/agree?next=')
    page = await ent.until(order_page, "第二条 验收标准")
    agreed = await post(ent, f"/orders/{order_id}/contract/agree")
    assert "已同意合同" in agreed.text and "待签署" in agreed.text
    document = await ent.get(
        f"/contracts/{re.search(r'/contracts/([^/]+)/document', agreed.text).group(1)}/document"
    )  # type: ignore[union-attr]
    assert document.status_code == 200 and document.headers["content-type"] == "application/pdf"
    assert document.content.startswith(b"%PDF")

    # --- seals and signatures after the face check -----------------------------------------
    row_sign = f'href="/orders/{order_id}#contract">签署'
    await ent.until("/me/orders", row_sign)
    await prov.until("/me/service-orders", row_sign)
    page = await ent.get(order_page)
    assert "签署合同前请先制作电子签章" in page.text  # no seal yet: where to make it
    await make_seal(ent, demo.ENTERPRISE.name)
    page = await ent.get(order_page)
    assert f'action="/orders/{order_id}/contract/sign"' in page.text
    verify = await post(ent, f"/orders/{order_id}/contract/sign")
    failed = await face_check(ent, verify, "fail")  # 不通过: nothing signed, the page says so
    assert "人脸认证未通过" in failed.text and f'action="/orders/{order_id}/contract/sign"' in failed.text
    verify = await post(ent, f"/orders/{order_id}/contract/sign")
    signed = await face_check(ent, verify)
    assert "合同已签署" in signed.text and "您已签署，等待对方签署" in signed.text
    await prov.until("/me/service-orders", row_sign)  # the provider has not signed yet
    for _ in range(50):  # contracts' event reaches orders: 签署 leaves the enterprise's row
        if row_sign not in (await ent.get("/me/orders")).text:
            break
        await asyncio.sleep(0.2)
    assert row_sign not in (await ent.get("/me/orders")).text

    await make_seal(prov, demo.PROVIDER.name)
    await prov.get(order_page)
    verify = await post(prov, f"/orders/{order_id}/contract/sign")
    signed = await face_check(prov, verify)
    assert "合同已签署" in signed.text

    # --- 线上支付: the deposit ----------------------------------------------------------------
    payment_page = f"/orders/{order_id}/payment"
    page = await ent.until(payment_page, "确认汇款", 'class="current" aria-current="step">线上支付')
    seen = text_of(page)
    for text in (
        "合同总金额 50,000 元",
        "服务券抵扣 25,000 元",
        "实付金额 25,000 元",
        "贰万伍仟元整",
        "合同定金 10,000 元",
        "合同尾款 15,000 元",
        "对公转账",
        demo.PROVIDER.name,
        "合同定金",
    ):
        assert text in seen, text
    assert 'name="amount_fen" type="text" value="10000"' in page.text  # the deposit proposed
    tabs = await ent.get("/me/orders")
    assert '待支付 <span class="count">(1)</span>' in tabs.text
    key = _IDEM.search(page.text)
    assert key
    receipt = {"receipt_file_ids": ("deposit.pdf", receipt_pdf(), "application/pdf")}
    paid = await post(
        ent,
        f"/orders/{order_id}/remittances",
        files=receipt,
        amount_fen="10000",
        bank_reference="DEP-0001",
        payer_account="6222000011112222",
        idempotency_key=key.group(1),
    )
    seen = text_of(paid)
    assert "汇款信息已提交" in seen and "DEP-0001" in seen and "待核实" in seen and "壹万元整" in seen
    # the same form again (a double click): no second transfer
    receipt = {"receipt_file_ids": ("deposit.pdf", receipt_pdf(), "application/pdf")}
    again = await post(
        ent,
        f"/orders/{order_id}/remittances",
        files=receipt,
        amount_fen="10000",
        bank_reference="DEP-0001",
        payer_account="6222000011112222",
        idempotency_key=key.group(1),
    )
    assert again.status_code == 200 and again.text.count("DEP-0001") == 1

    page = await prov.until(payment_page, "DEP-0001", "确认到账")
    file_link = re.search(r'href="(/files/[^"]+)"', page.text)
    assert file_link
    stored = await prov.get(file_link.group(1))
    assert stored.status_code == 200 and stored.content.startswith(b"%PDF")
    page = await prov.get(payment_page)
    confirm = re.search(rf'action="(/orders/{order_id}/remittances/[^"]+/confirm)"', page.text)
    assert confirm
    confirmed = await post(prov, confirm.group(1))
    assert "已确认到账" in confirmed.text and "已到账" in confirmed.text

    # --- 开始服务, 服务完成 ------------------------------------------------------------------------
    await prov.until(order_page, "待服务", f'action="/orders/{order_id}/start-service"')
    started = await post(prov, f"/orders/{order_id}/start-service")
    assert "已开始服务" in started.text and "待完成" in text_of(started)
    await prov.until(order_page, f'action="/orders/{order_id}/complete-service"')
    completed = await post(prov, f"/orders/{order_id}/complete-service")
    assert "服务已完成" in completed.text

    # --- the balance -------------------------------------------------------------------------------
    page = await ent.until(payment_page, "确认汇款", 'value="15000"')
    assert "合同尾款" in page.text
    key = _IDEM.search(page.text)
    assert key
    receipt = {"receipt_file_ids": ("balance.pdf", receipt_pdf(), "application/pdf")}
    paid = await post(
        ent,
        f"/orders/{order_id}/remittances",
        files=receipt,
        amount_fen="15,000",
        bank_reference="BAL-0002",
        payer_account="6222000011112222",
        idempotency_key=key.group(1),
    )
    assert "壹万伍仟元整" in paid.text and "确认汇款" not in text_of(paid)  # nothing left to remit
    page = await prov.until(payment_page, "BAL-0002", "确认到账")
    confirm = re.search(rf'action="(/orders/{order_id}/remittances/[^"]+/confirm)"', page.text)
    assert confirm
    await post(prov, confirm.group(1))

    # --- 服务评价 ------------------------------------------------------------------------------------
    page = await ent.until(order_page, "待评价", "提交评价")
    assert 'class="stars"' in page.text and 'maxlength="200"' in page.text and "data-counter" in page.text
    tabs = await ent.get("/me/orders")
    assert '已完成 <span class="count">(1)</span>' in tabs.text and "评价" in tabs.text
    evaluated = await post(ent, f"/orders/{order_id}/evaluation", rating="5", content="诊断深入，报告实用。")
    seen = text_of(evaluated)
    assert (
        "评价已提交" in seen
        and "非常满意" in seen
        and "诊断深入，报告实用。" in seen
        and "提交评价" not in seen
    )
    tabs = await ent.get("/me/orders?tab=evaluated")
    assert '评价完成 <span class="count">(1)</span>' in tabs.text and order_no.group(1) in tabs.text

    # --- staff read the same page, without its buttons ------------------------------------------
    page = await staff.get(order_page)
    seen = text_of(page)
    assert page.status_code == 200 and "评价完成" in seen and "DEP-0001" in seen and "BAL-0002" in seen
    assert "确认到账" not in seen and "提交评价" not in seen and "个人中心" not in seen.split("订单详情")[-1]
