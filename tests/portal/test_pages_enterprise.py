"""个人中心 for an enterprise, through the gateway to the portal process, as a browser without
scripts sees it: a newcomer registers, certifies in the manual's three steps, sets its bank
account and password, applies for the general and a special voucher; the demo enterprise
reads its voucher's ledger, publishes a demand, leaves a message and follows a notification."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from common import demo
from common.testing import data
from common.testing.api_client import random_phone
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import PortalClient

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def text(response: httpx.Response) -> str:
    """What a person reads on the page (tags dropped, spaces folded)."""
    body = response.text.split('id="main"', 1)[-1].split("<footer", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


async def api_token(visitor: PortalClient, phone: str, password: str) -> dict[str, str]:
    captcha = (await visitor.http.get("/api/v1/captcha")).json()
    answer = (await visitor.http.get(f"/api/v1/dev/captcha/{captcha['captcha_id']}")).json()["answer"]
    tokens = await visitor.http.post(
        "/api/v1/auth/login",
        json={
            "phone": phone,
            "password": password,
            "captcha_id": captcha["captcha_id"],
            "captcha_answer": answer,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


async def sms_code(visitor: PortalClient, phone: str) -> str:
    latest = await visitor.http.get("/api/v1/dev/sms-codes/latest", params={"phone": phone})
    assert latest.status_code == 200, latest.text
    return str(latest.json()["code"])


async def register(visitor: PortalClient, name: str) -> str:
    """注册 through the portal's page (获取验证码 as the no-script button does it)."""
    phone = random_phone()
    page = await visitor.submit(
        "/register", captcha=True, send_sms="1", enterprise_name=name, phone=phone, sms_code=""
    )
    assert "验证码已发送" in page.text, text(page)[:500]
    page = await visitor.submit(
        "/register", enterprise_name=name, phone=phone, sms_code=await sms_code(visitor, phone)
    )
    assert "企业信息认证" in page.text and "退出登录" in page.text, text(page)[:500]
    return phone


async def test_a_newcomer_certifies_in_three_steps_sets_its_account_and_applies_for_vouchers(
    visitor: PortalClient,
) -> None:
    name = f"广西门户测试制造有限公司{random_phone()[-4:]}"
    phone = await register(visitor, name)

    # 基本信息: not certified yet, and the page says what to do next
    me = text(await visitor.get("/me"))
    assert name in me and "未认证" in me and "去企业信息认证" in me and "企业负责人" in me
    assert phone[:3] + "****" + phone[-4:] in me  # the phone masked
    # the vouchers page tells an uncertified user to certify instead of a bare error
    vouchers = text(await visitor.get("/me/vouchers"))
    assert "企业信息认证" in vouchers and "通用券" in vouchers

    # step 1 企业信息: 获取验证码 (without scripts, the form's own button), then 下一步
    step1 = await visitor.get("/me/certification")
    assert "1 企业信息" in text(step1) and "2 指定经办人" in text(step1) and "3 认证成功" in text(step1)
    assert "已阅读并同意《统一认证平台认证服务协议》" in step1.text
    fields = {
        "role": "enterprise",
        "name": name,
        "legal_rep_name": "李四",
        "legal_rep_id_type": "resident_id",
        "legal_rep_id_number": data.valid_resident_id(),
        "agreed": "true",
    }
    sent = await visitor.submit(
        "/me/certification", captcha=True, send_sms="1", uscc="", sms_code="", **fields
    )
    assert "验证码已发送" in sent.text, text(sent)[:800]
    # a USCC another organisation holds: the API's 409 is shown on the form
    taken = await visitor.submit(
        "/me/certification", uscc=demo.ENTERPRISE.uscc, sms_code=await sms_code(visitor, phone), **fields
    )
    assert taken.status_code == 409
    assert "该统一社会信用代码已被其他账号认证" in taken.text
    assert name in taken.text  # what was typed stays
    await visitor.submit("/me/certification", captcha=True, send_sms="1", uscc="", sms_code="", **fields)
    uscc = data.valid_uscc()
    step2 = await visitor.submit(
        "/me/certification", uscc=uscc, sms_code=await sms_code(visitor, phone), **fields
    )
    assert "企业信息认证成功" in step2.text, text(step2)[:800]
    assert 'aria-current="step">2 指定经办人' in step2.text
    # step 2 指定经办人: a bad ID number is named next to its field; then 下一步
    bad = await visitor.submit(
        "/me/certification?step=agent",
        "/me/certification/agent?step=agent",
        name="王五",
        id_number="450102198505050000",
        phone=random_phone(),
    )
    assert bad.status_code == 422 and 'id="e-id_number"' in bad.text
    agent_phone = random_phone()
    done = await visitor.submit(
        "/me/certification?step=agent",
        "/me/certification/agent?step=agent",
        name="王五",
        id_number=data.valid_resident_id("19900101"),
        phone=agent_phone,
    )
    # step 3 认证成功
    assert "认证成功" in text(done) and 'aria-current="step">3 认证成功' in done.text
    assert f"{name} 已完成企业信息认证" in text(done)
    # the certified view: the details and the agent (masked), who can be removed
    view = text(await visitor.get("/me/certification"))
    assert "已认证" in view and uscc in view and "王五" in view and agent_phone[-4:] in view
    assert "取消经办人" in view
    removed = await visitor.submit("/me/certification", "/me/certification/agent/delete")
    assert "已取消经办人" in removed.text and "尚未指定经办人" in text(removed)
    me = text(await visitor.get("/me"))
    assert "已认证" in me and uscc in me and "去支付认证" in me

    # 支付认证: the account name must be the certified name (the API says so next to the field)
    account = {
        "bank_name": "中国银行",
        "bank_region": "广西壮族自治区南宁市",
        "branch_name": "中国银行南宁民族支行",
        "account_number": "6216600000001234567",
    }
    wrong = await visitor.submit("/me/bank-account", account_name="别的公司", **account)
    assert wrong.status_code == 422 and 'id="e-account_name"' in wrong.text
    saved = await visitor.submit("/me/bank-account", account_name=name, **account)
    assert "银行卡信息已保存" in saved.text and "已填写" in text(saved) and "4567" in text(saved)

    # 安全设置: a password for the account registered by SMS (no old one), confirmed twice
    mismatch = await visitor.submit(
        "/me/security", old_password="", new_password="Portal-2024", confirm="Portal-2025"
    )
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.text
    changed = await visitor.submit(
        "/me/security", old_password="", new_password="Portal-2024", confirm="Portal-2024"
    )
    assert "密码已修改" in changed.text

    # 服务券配额申请: the three cards, the general dialog's tier table (inline without scripts)
    page = await visitor.get("/me/vouchers")
    cards = text(page)
    for words in ("通用券", "融资担保专项券", "直接设备租赁专项券", "服务券配额申请", "配额有效期"):
        assert words in cards, words
    assert 'data-open-dialog="dlg-general"' in page.text and "<dialog" in page.text
    dialog = text(await visitor.get("/me/vouchers", apply="general"))
    for words in (
        "企业类型",
        "补贴金额(每年)",
        "一般规模以上制造业企业",
        "专精特新“小巨人”企业",
        "暂不需要",
        "确定配额申请",
        "系统将根据企业划型，自动申请对应额度的服务券",
    ):
        assert words in dialog, words
    applied = await visitor.submit("/me/vouchers?apply=general", "/me/vouchers", voucher_type="general")
    assert "配额申请成功" in applied.text
    # not on any designation list: flagged for a reviewer, so the card shows 待审核
    general = text(applied).split("通用券", 2)[-1].split("融资担保专项券")[0]
    assert "待审核" in general, general

    # a special voucher: 申领额度, its basis and 上传合同凭证; the API's limit named on the field
    too_much = await visitor.submit(
        "/me/vouchers?apply=financing_guarantee",
        "/me/vouchers",
        files={"proof_file_ids": ("担保合同.pdf", PDF, "application/pdf")},
        voucher_type="financing_guarantee",
        requested_fen="20000",
        basis_fen="30000",
    )
    assert too_much.status_code == 422
    assert (
        "申领额度超过了计算依据金额可给予的比例" in too_much.text
        and 'id="e-basis_fen-financing_guarantee"' in too_much.text
    )
    special = await visitor.submit(
        "/me/vouchers?apply=financing_guarantee",
        "/me/vouchers",
        files={"proof_file_ids": ("担保合同.pdf", PDF, "application/pdf")},
        voucher_type="financing_guarantee",
        requested_fen="10,000",
        basis_fen="30000",
    )
    assert "配额申请成功" in special.text, text(special)[:800]
    guarantee = text(special).split("融资担保专项券", 1)[-1].split("直接设备租赁专项券")[0]
    assert "待审核" in guarantee
    leasing = text(special).split("直接设备租赁专项券", 1)[-1]
    assert "服务券配额申请" in leasing  # the third card still offers its application

    # the new password works
    await visitor.submit("/", "/logout")
    await visitor.login(phone, "Portal-2024")


async def test_the_demo_enterprise_sees_its_voucher_and_its_ledger(visitor: PortalClient) -> None:
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    page = await visitor.get("/me/vouchers")
    cards = text(page)
    assert "去使用" in cards and "券号：SVC" in cards and "优惠总额度 100,000 元" in cards
    assert 'href="/products?type=general"' in page.text
    ledger_link = re.search(r'href="(/me/vouchers/[^"?]+)"', page.text)
    assert ledger_link
    ledger = text(await visitor.get(ledger_link.group(1)))
    assert "额度变动记录" in ledger and "发放" in ledger and "100,000" in ledger
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", ledger)  # Beijing time
    me = text(await visitor.get("/me"))
    assert demo.ENTERPRISE.name in me and "已认证" in me and "通用券剩余优惠额度 100,000 元" in me


async def test_the_bank_accounts_keyword_boxes_offer_the_reference_datas_matches(
    visitor: PortalClient,
) -> None:
    """支付认证's 开户所在地 and 开户支行 (请输入关键字搜索): a <datalist> of matches, which 查询
    fills without scripts and portal.js as one types; a region outside the data is refused."""
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    bank = demo.ENTERPRISE.bank
    page = await visitor.get("/me/bank-account")
    assert page.status_code == 200
    # the saved account's neighbours: Guangxi's cities, its bank's branches in its city
    assert (
        'list="dl-bank_region"' in page.text and 'data-options="/me/bank-account/options?field=' in page.text
    )
    assert '<option value="广西壮族自治区柳州市">' in page.text
    assert f'<option value="{bank}南宁分行营业部">' in page.text
    assert "<script>" not in page.text  # CSP 'self': nothing inline

    typed = {
        "account_name": demo.ENTERPRISE.name,
        "bank_name": bank,
        "account_number": "6222020000000001",
    }
    # 查询 without scripts: the same form again, what was typed kept, the matches offered
    regions = await visitor.submit(
        "/me/bank-account", lookup="bank_region", bank_region="柳州", branch_name="", **typed
    )
    assert regions.status_code == 200
    assert "找到 1 个匹配项" in text(regions)
    assert '<option value="广西壮族自治区柳州市">' in regions.text
    assert 'value="柳州"' in regions.text and f'value="{demo.ENTERPRISE.name}"' in regions.text
    branches = await visitor.submit(
        "/me/bank-account",
        lookup="branch_name",
        bank_region="广西壮族自治区柳州市",
        branch_name="营业部",
        **typed,
    )
    assert f'<option value="{bank}柳州分行营业部">' in branches.text
    assert f'<option value="{bank}南宁分行营业部">' not in branches.text  # another city
    nothing = await visitor.submit(
        "/me/bank-account", lookup="branch_name", bank_region="", branch_name="没有这个支行", **typed
    )
    assert "没有找到匹配项" in text(nothing)

    # what portal.js asks as one types
    answer = await visitor.get(
        "/me/bank-account/options",
        field="branch_name",
        q="民族",
        bank_region="广西壮族自治区南宁市",
        bank_name="中国工商银行",
    )
    assert answer.json() == {
        "options": [
            {
                "value": "中国工商银行南宁民族大道支行",
                "label": "中国工商银行南宁民族大道支行（广西壮族自治区南宁市）",
            },
            {
                "value": "中国工商银行南宁民族支行",
                "label": "中国工商银行南宁民族支行（广西壮族自治区南宁市）",
            },
        ],
        "total": 2,
    }

    # saving a region the data does not know: refused next to the field, nothing changed
    refused = await visitor.submit(
        "/me/bank-account", bank_region="广西南宁", branch_name=f"{bank}南宁分行营业部", **typed
    )
    assert refused.status_code == 422 and 'id="e-bank_region"' in refused.text
    assert "不在行政区划数据中" in text(refused)


async def test_a_demand_is_published_edited_reviewed_and_its_notification_followed(
    visitor: PortalClient, portal: Platform
) -> None:
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    form = await visitor.get("/me/demands/new")
    assert "需要服务商报价" in form.text and "我有明确预算" in form.text
    assert 'maxlength="300" required data-counter="c-content"' in form.text and "0/300" in form.text
    # a fixed budget needs its amount
    missing = await visitor.submit(
        "/me/demands/new",
        name="数字化车间改造方案",
        category="数字化转型",
        budget_mode="fixed",
        budget_fen="",
        content="需要数字化车间整体改造方案。",
    )
    assert missing.status_code == 422 and "请填写预算金额" in missing.text
    created = await visitor.submit(
        "/me/demands/new",
        name="数字化车间改造方案",
        category="数字化转型",
        budget_mode="fixed",
        budget_fen="80000",
        content="需要数字化车间整体改造方案。",
    )
    page = text(created)
    assert "需求已提交" in page and "待处理" in page and "80,000元" in page and demo.ENTERPRISE.phone in page
    demand_id = str(created.url).rstrip("/").rsplit("/", 1)[-1]
    # 修改 while 待处理
    edited = await visitor.submit(
        f"/me/demands/{demand_id}/edit",
        name="数字化车间改造方案（二期）",
        category="数字化转型",
        budget_mode="quote",
        budget_fen="",
        content="需要数字化车间二期改造方案。",
    )
    assert "需求已修改" in edited.text and "数字化车间改造方案（二期）" in text(edited)
    listing = text(await visitor.get("/me/demands", status="pending"))
    assert "数字化车间改造方案（二期）" in listing
    pending = re.search(r"待处理 \((\d+)\)", listing)
    assert pending and int(pending.group(1)) >= 1

    # a reviewer publishes it (API): the enterprise is notified and follows the notice
    admin = await api_token(visitor, ADMIN_PHONE, ADMIN_PASSWORD)
    approved = await visitor.http.post(f"/api/v1/admin/demands/{demand_id}/approve", json={}, headers=admin)
    assert approved.status_code == 200, approved.text
    notices = None
    for _ in range(40):
        notices = await visitor.get("/me/notifications")
        if "需求已发布" in notices.text:
            break
        await asyncio.sleep(0.25)
    assert notices is not None and "需求已发布" in notices.text, text(notices)[:800]
    assert "未读" in text(notices) and "全部已读" in text(notices)
    notice_id = re.search(r'action="/me/notifications/([^"/]+)/read"', notices.text)
    assert notice_id
    opened = await visitor.submit(
        "/me/notifications", f"/me/notifications/{notice_id.group(1)}/read", open="1"
    )
    assert str(opened.url).endswith(f"/me/demands/{demand_id}"), opened.url
    assert "已发布" in text(opened) and "关闭需求" in text(opened)
    # 全部已读
    cleared = await visitor.submit("/me/notifications", "/me/notifications/read-all")
    assert "全部通知已标为已读" in cleared.text

    # 关闭需求
    closed = await visitor.submit(f"/me/demands/{demand_id}", f"/me/demands/{demand_id}/close")
    assert "需求已关闭" in closed.text and "关闭需求" in text(closed)
    assert "关闭需求 (1)" in text(await visitor.get("/me/demands"))


async def test_a_message_and_favorites(visitor: PortalClient) -> None:
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    left = await visitor.submit("/me/messages", content="请问专项券的合同凭证需要盖章吗？")
    assert "留言已提交" in left.text
    page = text(left)
    assert "请问专项券的合同凭证需要盖章吗？" in page and "等待平台回复" in page

    # a favourite added through the API shows with its prices and a link to the product
    me = await api_token(visitor, demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    products = (await visitor.http.get("/api/v1/products", params={"page_size": 1})).json()["items"]
    assert products
    product = products[0]
    added = await visitor.http.put(f"/api/v1/me/favorites/{product['id']}", headers=me)
    assert added.status_code == 204, added.text
    favorites = await visitor.get("/me/favorites")
    assert product["name"] in favorites.text and f'href="/products/{product["id"]}"' in favorites.text
    removed = await visitor.submit("/me/favorites", f"/me/favorites/{product['id']}/delete")
    assert "已取消收藏" in removed.text and "还没有收藏的服务产品" in text(removed)


async def test_a_visitor_is_sent_to_sign_in(visitor: PortalClient) -> None:
    page = await visitor.get("/me/vouchers")
    assert "/login" in str(page.url) and "请先登录" in page.text


def test_a_notifications_link_opens_the_portals_page() -> None:
    from web.routers.enterprise import portal_link

    assert portal_link("/api/v1/orders/o-1") == "/orders/o-1"
    assert portal_link("/api/v1/orders/o-1/contract") == "/orders/o-1"
    assert portal_link("/api/v1/orders/o-1/payment") == "/orders/o-1/payment"
    assert portal_link("/api/v1/me/demands/d-1/responses") == "/me/demands/d-1"
    assert portal_link("/api/v1/me/messages#m-1") == "/me/messages#m-1"
    assert portal_link("/api/v1/me/vouchers") == "/me/vouchers"
    assert portal_link("/api/v1/me/products/p-1") == "/me/products/p-1/edit"
    assert portal_link("https://elsewhere.example/x") == "/me/notifications"
    assert portal_link("//elsewhere.example/x") == "/me/notifications"
