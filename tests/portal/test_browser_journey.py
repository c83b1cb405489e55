"""The manual's whole journey clicked through in a real browser (Debian's Chromium), by an
enterprise, a provider and platform staff, each in its own browser context (its own cookies):

1. a newcomer registers, certifies in the three steps, sets its bank account and applies for
   the general voucher (待审核);
2. staff see the queue on the dashboard and approve the flagged application with a reason;
3. the enterprise browses 通用券服务, opens the demo provider's product (券后价), reads 订单详情
   and submits the order;
4. the provider accepts it and drafts the contract, while the enterprise's bell rises without
   a reload;
5. the enterprise returns it, the provider amends it, the enterprise agrees;
6. both make their seals and sign after the simulated face check;
7. the enterprise pays in two transfers with a receipt, the provider confirms each and serves,
   the enterprise evaluates;
8. the provider claims the settlement with its uploads, staff approve and pay it out;
9. a demand published, approved and answered; a message left and replied to.

A screenshot of each main screen is saved under artifacts/portal/, and no page of any context
logs a script or console error. The saga between the services is asynchronous: where a page
waits for another service, it is reloaded until it shows the next state.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from common import demo
from common.testing import data
from common.testing.api_client import random_phone
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import ConsoleErrors, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(900)]

PRODUCT = "企业管理诊断咨询"  # the demo provider's: 平台销售价 50,000 元, 最高补贴 25,000 元 (50%)


def receipt_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_file(name: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/pdf", "buffer": receipt_pdf()}


@dataclass
class User:
    """One person at one browser: its context (cookies), its page, its console."""

    who: str
    context: Any
    page: Any
    errors: ConsoleErrors

    def clean(self) -> None:
        assert self.errors == [], f"{self.who}: {self.errors}"


async def open_user(browser: Any, portal: Platform, who: str) -> User:
    context = await browser.new_context(
        base_url=portal.gateway_url, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    errors = ConsoleErrors()
    page = errors.watch(await context.new_page())
    page.on("dialog", lambda dialog: dialog.accept())  # 同意 and 服务完成 ask to confirm
    page.set_default_timeout(20_000)
    return User(who, context, page, errors)


async def main_text(page: Any) -> str:
    return re.sub(r"\s+", " ", await page.locator("#main").inner_text())


async def until_text(page: Any, url: str, *texts: str, within: float = 20) -> str:
    """Opens ``url`` again until its page shows every one of ``texts`` (the saga is asynchronous)."""
    deadline = time.monotonic() + within
    while True:
        await page.goto(url)
        seen = await main_text(page)
        if all(t in seen for t in texts):
            return seen
        if time.monotonic() > deadline:
            missing = [t for t in texts if t not in seen]
            raise AssertionError(f"{url} never showed {missing}:\n{seen[:3000]}")
        await asyncio.sleep(0.5)


async def shows(page: Any, *texts: str) -> str:
    """The page now shows every one of ``texts``."""
    for t in texts:
        await page.get_by_text(t).first.wait_for()
    return await main_text(page)


async def captcha(user: User) -> None:
    """Answers the page's graphic captcha through the development helper."""
    captcha_id = await user.page.locator('input[name="captcha_id"]').input_value()
    response = await user.context.request.get(f"/api/v1/dev/captcha/{captcha_id}")
    await user.page.get_by_label("图形验证码").fill((await response.json())["answer"])


async def sms_code(user: User, phone: str, purpose: str) -> str:
    """获取验证码 (the page's button, the captcha with it), then the code the SMS carried. Sent
    too soon after the last one, the page says when to try again and counts down: wait, retry."""
    page = user.page
    button = page.get_by_role("button", name=re.compile("获取验证码|秒后重新获取"))
    status = page.locator(".sms-status")
    for _ in range(2):
        await captcha(user)
        await button.click()
        await page.wait_for_function("el => el.textContent.trim() !== ''", arg=await status.element_handle())
        said = await status.inner_text()
        if "验证码已发送" in said:
            break
        assert "秒后再试" in said, said
        await page.get_by_role("button", name="获取验证码").wait_for(timeout=70_000)
        await page.evaluate("el => { el.textContent = '' }", await status.element_handle())
    else:
        raise AssertionError(f"no SMS code sent: {said}")
    response = await user.context.request.get("/api/v1/dev/sms-codes/latest", params={"phone": phone})
    assert response.ok, await response.text()
    answer = await response.json()
    assert answer["purpose"] == purpose, answer
    return str(answer["code"])


async def sign_in(user: User, phone: str, password: str) -> None:
    page = user.page
    await page.goto("/login")
    await page.get_by_label("手机号").fill(phone)
    await page.get_by_label("密码").fill(password)
    await captcha(user)
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("button", name="退出登录").wait_for()


async def bell_count(page: Any) -> int:
    text = (await page.locator("#bell-count").text_content()) or "0"
    return int(text.strip() or 0)


async def face_check(page: Any) -> None:
    """The simulated 人脸认证 page: 通过."""
    await page.get_by_role("heading", name="人脸认证").wait_for()
    assert await page.get_by_role("button", name="不通过").count() == 1
    await page.get_by_role("button", name="通过", exact=True).click()


@dataclass
class Journey:
    portal: Platform
    ent: User
    prov: User
    staff: User
    name: str = ""
    phone: str = ""
    order_id: str = ""
    order_no: str = ""

    @property
    def order_url(self) -> str:
        return f"/orders/{self.order_id}"


async def test_the_manuals_whole_journey_in_three_browsers(portal: Platform, browser: Any) -> None:
    users = [await open_user(browser, portal, who) for who in ("enterprise", "provider", "staff")]
    journey = Journey(portal, *users)
    try:
        await register_certify_and_apply(journey)
        await staff_approve_the_application(journey)
        await browse_and_order(journey)
        await accept_and_draft_with_the_bell_rising(journey)
        await return_amend_agree(journey)
        await seal_and_sign(journey)
        await pay_serve_and_evaluate(journey)
        await claim_approve_pay_out(journey)
        await a_demand_and_a_message(journey)
    except BaseException:
        for user in users:  # what each one saw when it failed
            await screenshot(user.page, f"journey-failed-{user.who}")
        raise
    finally:
        for user in users:
            await user.context.close()


# --- 1. the enterprise: 注册, 企业信息认证, 支付认证, 服务券配额申请 ----------------------------------


async def register_certify_and_apply(j: Journey) -> None:
    ent, page = j.ent, j.ent.page
    await page.goto("/")
    await page.get_by_text("服务券使用流程").wait_for()
    await screenshot(page, "home")

    j.name = f"广西浏览器测试制造有限公司{uuid.uuid4().hex[:4]}"
    j.phone = random_phone()
    await page.get_by_role("link", name="注册").first.click()
    await page.get_by_role("heading", name="注册").wait_for()
    await page.get_by_label("企业名称").fill(j.name)
    await page.get_by_label(re.compile(r"^手机号")).fill(j.phone)
    code = await sms_code(ent, j.phone, "register")
    await page.get_by_label("手机验证码").fill(code)
    await page.get_by_role("button", name="立即注册").click()

    # 企业信息认证, step 1 企业信息
    await shows(page, "注册成功，请完成企业信息认证", "1 企业信息", "2 指定经办人", "3 认证成功")
    assert await page.get_by_label("企业名称/机构名称").input_value() == j.name
    await page.get_by_label("统一社会信用代码").fill(data.valid_uscc())
    await page.get_by_label("法定代表人姓名").fill("李四")
    await page.get_by_label("法定代表人证件号码").fill(data.valid_resident_id())
    code = await sms_code(ent, j.phone, "certify")
    await page.get_by_label("手机验证码").fill(code)
    await page.get_by_label("已阅读并同意《统一认证平台认证服务协议》").check()
    await page.get_by_role("button", name="下一步").click()
    # step 2 指定经办人
    await shows(page, "企业信息认证成功")
    await page.get_by_role("heading", name="指定经办人").wait_for()
    await page.get_by_label("经办人姓名").fill("王五")
    await page.get_by_label("经办人身份证号码").fill(data.valid_resident_id("19900101"))
    await page.get_by_label("经办人手机号").fill(random_phone())
    await page.get_by_role("button", name="下一步").click()
    # step 3 认证成功
    seen = await shows(page, f"{j.name} 已完成企业信息认证")
    assert "认证成功" in seen

    # 支付认证
    await page.get_by_role("link", name="支付认证").first.click()
    assert await page.get_by_label("银行开户名").input_value() == j.name
    await page.get_by_label("开户银行").fill("中国银行")
    await page.get_by_label("开户所在地").fill("广西壮族自治区南宁市")
    await page.get_by_label("开户支行名称").fill("中国银行南宁民族支行")
    await page.get_by_label("银行账号").fill("6216600000001234567")
    await page.get_by_role("button", name="保存").click()
    await shows(page, "银行卡信息已保存", "已填写")

    # 服务券配额申请: the general voucher's dialog, 确定配额申请 -> 待审核
    await page.get_by_role("link", name="服务券配额申请").first.click()
    general = page.locator("article.voucher-card").filter(
        has=page.get_by_role("heading", name="通用券", exact=True)
    )
    await general.get_by_role("link", name="服务券配额申请").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_text("补贴金额(每年)").wait_for()
    assert await dialog.get_by_role("link", name="暂不需要").count() == 1
    await dialog.get_by_role("button", name="确定配额申请").click()
    await shows(page, "配额申请成功")
    general = page.locator("article.voucher-card").filter(
        has=page.get_by_role("heading", name="通用券", exact=True)
    )
    await general.get_by_text("待审核").wait_for()
    ent.clean()


# --- 2. staff: the dashboard's queue, the flagged application approved with a reason -------------


async def staff_approve_the_application(j: Journey) -> None:
    page = j.staff.page
    await sign_in(j.staff, ADMIN_PHONE, ADMIN_PASSWORD)
    await page.get_by_role("heading", name="工作台").wait_for()
    flagged = page.get_by_role("link").filter(has_text="其中需人工核实")
    count = await flagged.locator(".queue-count").inner_text()
    assert int(count) >= 1, count
    await screenshot(page, "admin")
    await flagged.click()
    row = page.get_by_role("row").filter(has_text=j.name)
    await row.get_by_text("需人工核实").first.wait_for()
    await row.get_by_label("审核意见").fill("经核实属规模以上制造业企业")
    await row.get_by_role("button", name="审核通过").click()
    await shows(page, "已审核通过")
    j.staff.clean()


# --- 3. the enterprise: 去使用, 通用券服务, the product, 订单详情, 提交订单 -----------------------------


async def browse_and_order(j: Journey) -> None:
    page = j.ent.page
    general_card = page.locator("article.voucher-card").filter(
        has=page.get_by_role("heading", name="通用券", exact=True)
    )
    deadline = time.monotonic() + 30
    while True:  # the voucher is issued by the quota service's saga
        await page.goto("/me/vouchers")
        if await general_card.get_by_role("link", name="去使用").count():
            break
        assert time.monotonic() < deadline, await main_text(page)
        await asyncio.sleep(0.5)
    seen = await general_card.inner_text()
    assert "券号：SVC" in seen and "剩余优惠额度" in seen, seen
    await screenshot(page, "vouchers")

    await general_card.get_by_role("link", name="去使用").click()
    await page.get_by_role("heading", name="通用券服务").wait_for()
    await screenshot(page, "products")
    await page.get_by_label("服务名关键字").fill(PRODUCT)
    await page.get_by_role("button", name="搜索").click()
    await page.get_by_role("link", name=PRODUCT).click()

    await page.get_by_role("heading", name=PRODUCT).wait_for()
    seen = await main_text(page)
    for words in ("市场指导价", "平台销售价", "券后价 25,000元", "最高补贴 25,000元", "用券有效期", "拥有"):
        assert words in seen, words
    assert demo.PROVIDER.name in seen
    await screenshot(page, "product")

    await page.get_by_role("link", name="申请服务").click()
    await page.get_by_role("heading", name="订单详情").wait_for()
    assert await page.get_by_label("勾选使用补贴券").is_checked()
    seen = await main_text(page)
    for words in (
        "服务金额 50,000 元",
        "服务券抵扣金额 25,000 元",
        "实付金额 25,000 元",
        "实付大写金额",
        "贰万伍仟元整",
    ):
        assert words in seen, words
    await screenshot(page, "order-new")
    await page.get_by_role("button", name="提交订单").click()
    await shows(page, "订单已提交", "待接单")
    matched = re.search(r"/orders/([0-9a-fA-F-]{36})$", page.url)
    assert matched, page.url
    j.order_id = matched.group(1)
    found = re.search(r"订单编号 ([A-Z0-9]+)", await main_text(page))
    assert found
    j.order_no = found.group(1)
    j.ent.clean()


# --- 4. the provider: 我的服务订单, 接单, 起草合同 -> 提交; the enterprise's bell rises live ----------


async def accept_and_draft_with_the_bell_rising(j: Journey) -> None:
    prov = j.prov.page
    await sign_in(j.prov, demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    await until_text(prov, "/me/service-orders", j.order_no)
    await screenshot(prov, "service-orders")
    row = prov.get_by_role("row").filter(has_text=j.order_no)
    assert j.name in await row.inner_text()
    await row.get_by_role("button", name="接单").click()
    await shows(prov, "已接单")

    await until_text(prov, j.order_url, "起草合同")
    await prov.get_by_role("link", name="起草合同").click()
    await prov.get_by_role("heading", name=re.compile("起草合同")).wait_for()
    await prov.get_by_label("合同总金额(元)").fill("50000")
    await prov.get_by_label("合同定金(元)").fill("10000")
    await prov.get_by_label("合同条款").fill("第一条 服务内容：企业管理诊断咨询。")

    # the enterprise keeps its order page open: no navigation from here on
    ent = j.ent.page
    async with ent.expect_response(lambda r: "/notifications/unread" in r.url):
        await ent.goto(j.order_url)
    await asyncio.sleep(2)  # the bell's event stream connects
    before = await bell_count(ent)

    await prov.get_by_role("button", name="提交", exact=True).click()
    seen = await shows(prov, "合同已提交给企业确认")
    assert "合同总金额 50,000 元" in seen and "合同定金 10,000 元" in seen

    await ent.wait_for_function(
        "n => (parseInt(document.getElementById('bell-count').textContent, 10) || 0) > n",
        arg=before,
        timeout=15_000,
    )
    assert await ent.locator("#bell-count").is_visible()
    assert "新通知" in ((await ent.locator("#bell-live").text_content()) or "")
    j.ent.clean()
    j.prov.clean()


# --- 5. 退回修改, the amendment, 同意 -------------------------------------------------------------


async def return_amend_agree(j: Journey) -> None:
    ent, prov = j.ent.page, j.prov.page
    await until_text(ent, j.order_url, "退回修改", "第一条 服务内容")
    await ent.get_by_label("退回原因").fill("请补充验收标准")
    await ent.get_by_role("button", name="退回修改").click()
    await shows(ent, "合同已退回服务机构修改")

    await until_text(prov, j.order_url, "请补充验收标准", "修改合同")
    await prov.get_by_role("link", name="修改合同").click()
    await prov.get_by_role("heading", name=re.compile("修改合同")).wait_for()
    await prov.get_by_label("合同条款").fill(
        "第一条 服务内容：企业管理诊断咨询。\n第二条 验收标准：双方确认诊断报告。"
    )
    await prov.get_by_role("button", name="提交", exact=True).click()
    seen = await shows(prov, "合同已提交给企业确认")
    assert "退回修改：请补充验收标准" in seen and "第 2 版" in seen

    await until_text(ent, j.order_url, "第二条 验收标准", "同意")
    await ent.get_by_role("button", name="同意", exact=True).click()  # confirmed in the dialog
    await shows(ent, "已同意合同", "待签署")
    j.ent.clean()
    j.prov.clean()


# --- 6. 制作签章 and 签署合同, each after the 人脸认证 -----------------------------------------------


async def seal_and_sign(j: Journey) -> None:
    for user, name in ((j.ent, j.name), (j.prov, demo.PROVIDER.name)):
        page = user.page
        await until_text(page, j.order_url, "签订合同")
        if await page.get_by_role("link", name="制作签章").count():
            await page.get_by_role("link", name="制作签章").click()
            await page.get_by_label("我已阅读并同意《电子签章使用协议》").check()
            await page.get_by_role("button", name="开始身份认证").click()
            await face_check(page)
            await shows(page, "电子签章已制作完成")  # back on the order page
            assert page.url.endswith(j.order_url), page.url
            await page.get_by_role("link", name="电子签章").click()
            await page.get_by_role("img", name=f"{name} 电子签章").wait_for()
            await page.goto(j.order_url)
        await page.get_by_role("button", name="签署合同").click()
        await face_check(page)
        await shows(page, "合同已签署")
        user.clean()
    await until_text(j.ent.page, j.order_url, "去支付")
    await screenshot(j.ent.page, "order")


# --- 7. 线上支付 in two transfers, 到账核实, 开始服务 / 服务完成, 服务评价 ------------------------------


async def remit(j: Journey, amount: str, reference: str, upper: str) -> None:
    page = j.ent.page
    await until_text(page, f"{j.order_url}/payment", "确认汇款")
    assert await page.get_by_label("汇款金额(元)").input_value() == amount  # the stage proposed
    if reference.startswith("DEP"):
        seen = await main_text(page)
        for words in ("合同总金额 50,000 元", "合同定金 10,000 元", "合同尾款 15,000 元", "贰万伍仟元整"):
            assert words in seen, words
        for words in ("对公转账信息", "收款户名", demo.PROVIDER.name, "汇款记录"):
            assert words in seen, words
        await screenshot(page, "payment")
    await page.get_by_label("银行流水号").fill(reference)
    await page.get_by_label("付款账号").fill("6216600000001234567")
    await page.get_by_label("汇款凭证（PDF/JPG/PNG）").set_input_files(pdf_file("receipt.pdf"))
    await page.get_by_role("button", name="确认汇款").click()
    seen = await shows(page, "汇款信息已提交", reference)
    assert upper in seen and "待核实" in seen


async def confirm_transfer(j: Journey, reference: str) -> None:
    page = j.prov.page
    await until_text(page, f"{j.order_url}/payment", reference, "确认到账")
    row = page.get_by_role("row").filter(has_text=reference)
    await row.get_by_role("link", name="凭证1").wait_for()
    await row.get_by_role("button", name="确认到账").click()
    await shows(page, "已确认到账")


async def pay_serve_and_evaluate(j: Journey) -> None:
    ent, prov = j.ent.page, j.prov.page
    await ent.goto(j.order_url)
    await ent.get_by_role("link", name="去支付").click()
    await remit(j, "10000", "DEP-0001", "壹万元整")
    await confirm_transfer(j, "DEP-0001")

    await until_text(prov, j.order_url, "开始服务")
    await prov.get_by_role("button", name="开始服务").click()
    await shows(prov, "已开始服务")
    await until_text(prov, j.order_url, "服务完成")
    await prov.get_by_role("button", name="服务完成").click()  # confirmed in the dialog
    await shows(prov, "服务已完成")

    await remit(j, "15000", "BAL-0002", "壹万伍仟元整")
    await confirm_transfer(j, "BAL-0002")

    await until_text(ent, j.order_url, "待评价", "提交评价")
    await ent.locator('label[for="rating-5"]').click()
    assert await ent.get_by_label("5 星").is_checked()
    words = "诊断深入，报告实用。"
    await ent.get_by_label("评价内容").fill(words)
    await ent.get_by_text(f"{len(words)}/200").wait_for()  # the 200-character counter
    await ent.get_by_role("button", name="提交评价").click()
    await shows(ent, "评价已提交", "非常满意", words)
    await until_text(ent, "/me/orders?tab=evaluated", j.order_no)
    j.ent.clean()
    j.prov.clean()


# --- 8. 服务券兑付: the claim with its uploads, approved and paid out ---------------------------------


async def claim_approve_pay_out(j: Journey) -> None:
    prov, staff = j.prov.page, j.staff.page
    await until_text(prov, "/me/settlements?state=open", j.order_no, within=30)
    row = prov.get_by_role("row").filter(has_text=j.order_no)
    assert "25,000" in await row.inner_text()
    await row.get_by_text("申请兑付", exact=True).click()
    await row.get_by_label(re.compile("^发票")).set_input_files(pdf_file("invoice.pdf"))
    await row.get_by_label(re.compile("^企业付款凭证")).set_input_files(
        [pdf_file("deposit.pdf"), pdf_file("balance.pdf")]
    )
    await row.get_by_label(re.compile("^服务成果证明")).set_input_files(pdf_file("report.pdf"))
    await screenshot(prov, "settlements")
    await row.get_by_role("button", name="提交兑付申请").click()
    await shows(prov, "兑付申请已提交")

    await until_text(staff, "/admin/settlements?state=claimed", j.order_no)
    row = staff.get_by_role("row").filter(has_text=j.order_no)
    assert j.name in await row.inner_text() and demo.PROVIDER.name in await row.inner_text()
    await row.get_by_role("button", name="审核通过").click()
    await shows(staff, "兑付申请已审核通过，待付款")
    await until_text(staff, "/admin/settlements?state=approved", j.order_no)
    row = staff.get_by_role("row").filter(has_text=j.order_no)
    await row.get_by_label("打款流水号").fill("PAYOUT-0001")
    await row.get_by_role("button", name="确认付款").click()
    await shows(staff, "已登记付款，兑付完成")

    seen = await until_text(prov, "/me/settlements?state=paid", j.order_no, "PAYOUT-0001")
    assert "已兑付" in seen
    j.prov.clean()
    j.staff.clean()


# --- 9. a demand with a response, a message with its reply ----------------------------------------


async def a_demand_and_a_message(j: Journey) -> None:
    ent, prov, staff = j.ent.page, j.prov.page, j.staff.page
    title = f"数字化车间改造方案{uuid.uuid4().hex[:4]}"
    await ent.goto("/demands")
    await ent.get_by_role("link", name="发布需求").click()
    await ent.get_by_label("需求名称").fill(title)
    await ent.get_by_label("需求分类").select_option("数字化转型")
    await ent.get_by_role("radio", name="我有明确预算").check()
    await ent.get_by_role("textbox", name=re.compile("^预算金额")).fill("80000")
    await ent.get_by_label("需求内容").fill("需要数字化车间整体改造方案。")
    await ent.get_by_role("button", name="申请发布需求").click()
    await shows(ent, "需求已提交", "待处理")
    demand_url = ent.url

    await until_text(staff, "/admin/demands?status=pending", title)
    row = staff.get_by_role("row").filter(has_text=title)
    await row.get_by_role("button", name="审核通过").click()
    await shows(staff, "已审核通过，需求已发布")

    await until_text(prov, "/demands", title)
    item = prov.locator("li.demand-item").filter(has_text=title)
    await item.get_by_role("link", name="我要对接").click()
    await prov.get_by_label("联系人").fill("赵六")
    await prov.get_by_label("联系电话").fill("13800000002")
    await prov.get_by_label("对接说明").fill("我机构可提供数字化车间整体改造方案。")
    await prov.get_by_role("button", name="我要对接").click()
    await shows(prov, "贵机构已申请对接该需求")

    seen = await until_text(ent, demand_url, demo.PROVIDER.name, "我机构可提供数字化车间整体改造方案。")
    assert "赵六" in seen

    question = f"请问服务券兑付需要多久到账？{uuid.uuid4().hex[:4]}"
    await ent.goto("/me/messages")
    await ent.get_by_label("留言内容").fill(question)
    await ent.get_by_role("button", name="提交留言").click()
    await shows(ent, "留言已提交", "等待平台回复")

    await until_text(staff, "/admin/messages?status=open", question)
    card = staff.locator("li.card").filter(has_text=question)
    await card.get_by_label("回复内容").fill("审核通过后五个工作日内到账。")
    await card.get_by_role("button", name="回复").click()
    await shows(staff, "已回复留言")

    seen = await until_text(ent, "/me/messages", "审核通过后五个工作日内到账。")
    assert "平台回复" in seen
    for user in (j.ent, j.prov, j.staff):
        user.clean()
