"""Every main page in a real browser (Debian's Chromium), as the demo enterprise, the demo
provider, staff and a visitor: no script errors, a label on every field, the keyboard reaches
the content, and nothing scrolls sideways at a phone's width (375 px); and the home page and
signing in as a person does it."""

from __future__ import annotations

from typing import Any

import pytest

from common import demo
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import ConsoleErrors, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

PHONE_WIDTH = 375

VISITOR = [
    "/",
    "/products?type=general",
    "/products?type=special",
    "/demands",
    "/notices",
    "/login",
    "/login?mode=sms",
    "/register",
    "/password/reset",
]
ENTERPRISE = [
    "/me",
    "/me/certification",
    "/me/bank-account",
    "/me/security",
    "/me/vouchers",
    "/me/vouchers?apply=general",
    "/me/orders",
    "/me/demands",
    "/me/demands/new",
    "/me/favorites",
    "/me/messages",
    "/me/notifications",
    "/me/seal",
    "/me/provider-application",
]
PROVIDER = [
    "/me/provider-profile",
    "/me/products",
    "/me/products/new",
    "/me/service-orders",
    "/me/settlements",
]
STAFF = [
    "/admin",
    "/admin/quota-applications",
    "/admin/provider-applications",
    "/admin/products",
    "/admin/demands",
    "/admin/remittances",
    "/admin/settlements",
    "/admin/refunds",
    "/admin/vouchers",
    "/admin/contracts",
    "/admin/messages",
    "/admin/organizations",
    "/admin/designations",
    "/admin/campaigns",
    "/admin/staff",
    "/admin/notices",
    "/admin/audit-log",
]

# Visible form controls without a label (a <label for>, a wrapping <label>, aria-label or
# aria-labelledby), named so a failure says which.
UNLABELLED = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => (el.name || el.id || el.outerHTML.slice(0, 80)))
"""


async def reaches_main(page: Any, stops: int = 40) -> bool:
    """Tab from the top: some control inside <main> takes the focus (past the skip link and
    the menus)."""
    for _ in range(stops):
        await page.keyboard.press("Tab")
        if await page.evaluate(
            "!!(document.activeElement && document.activeElement.closest('main') "
            "&& document.activeElement !== document.querySelector('main'))"
        ):
            return True
    return False


async def sign_in(context: Any, phone: str, password: str) -> None:
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("手机号").fill(phone)
    await page.get_by_label("密码").fill(password)
    captcha_id = await page.locator('input[name="captcha_id"]').input_value()
    answer = (await (await context.request.get(f"/api/v1/dev/captcha/{captcha_id}")).json())["answer"]
    await page.get_by_label("图形验证码").fill(answer)
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("button", name="退出登录").wait_for()
    await page.close()


async def check_pages(browser: Any, base: str, paths: list[str], who: tuple[str, str] | None) -> list[str]:
    context = await browser.new_context(base_url=base, locale="zh-CN")
    problems: list[str] = []
    try:
        if who:
            await sign_in(context, *who)
        for path in paths:
            errors = ConsoleErrors()
            page = errors.watch(await context.new_page())
            response = await page.goto(path)
            await page.wait_for_load_state("load")
            if response is None or response.status != 200:
                problems.append(f"{path}: status {response.status if response else None}")
            unlabelled = await page.evaluate(UNLABELLED)
            if unlabelled:
                problems.append(f"{path}: fields without a label: {unlabelled}")
            if not await reaches_main(page):
                problems.append(f"{path}: the keyboard reaches nothing in the page's content")
            await page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
            width = await page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE_WIDTH + 5:
                problems.append(f"{path}: {width}px wide at a phone's {PHONE_WIDTH}px")
            problems.extend(f"{path}: {e}" for e in errors)
            await page.close()
    finally:
        await context.close()
    return problems


async def test_every_main_page_is_clean_labelled_keyboard_reachable_and_fits_a_phone(
    portal: Platform, browser: Any
) -> None:
    base = portal.gateway_url
    problems = [
        *await check_pages(browser, base, VISITOR, None),
        *await check_pages(browser, base, ENTERPRISE, (demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)),
        *await check_pages(browser, base, PROVIDER, (demo.PROVIDER.phone, demo.DEMO_PASSWORD)),
        *await check_pages(browser, base, STAFF, (ADMIN_PHONE, ADMIN_PASSWORD)),
    ]
    assert problems == [], "\n".join(problems)


async def test_home_and_password_sign_in_in_a_browser(portal: Platform, browser: Any) -> None:
    context = await browser.new_context(base_url=portal.gateway_url, locale="zh-CN")
    errors = ConsoleErrors()
    page = errors.watch(await context.new_page())
    await page.goto("/")
    assert await page.locator("h1").first.inner_text() != ""
    await page.get_by_text("服务券使用流程").wait_for()
    await screenshot(page, "home")
    await page.set_viewport_size({"width": 375, "height": 800})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the home page scrolls sideways at a phone's width ({width}px)"
    await page.set_viewport_size({"width": 1280, "height": 900})

    await page.get_by_role("link", name="登录").first.click()
    await page.get_by_label("手机号").fill(demo.ENTERPRISE.phone)
    await page.get_by_label("密码").fill(demo.DEMO_PASSWORD)
    captcha_id = await page.locator('input[name="captcha_id"]').input_value()
    response = await context.request.get(f"/api/v1/dev/captcha/{captcha_id}")
    answer = (await response.json())["answer"]
    await page.get_by_label("图形验证码").fill(answer)
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("button", name="退出登录").wait_for()
    assert await page.locator("#bell").count() == 1
    assert errors == [], errors
    await context.close()


async def test_the_bank_accounts_keyword_boxes_suggest_as_one_types(portal: Platform, browser: Any) -> None:
    """portal.js fills 开户所在地's and 开户支行's <datalist> from the reference lookups."""
    context = await browser.new_context(base_url=portal.gateway_url, locale="zh-CN")
    try:
        await sign_in(context, demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
        errors = ConsoleErrors()
        page = errors.watch(await context.new_page())
        await page.goto("/me/bank-account")
        await page.get_by_label("开户所在地").fill("柳州")
        await page.wait_for_function(
            "() => Array.from(document.querySelectorAll('#dl-bank_region option'))"
            ".map(o => o.value).join('|') === '广西壮族自治区柳州市'"
        )
        await page.get_by_label("开户所在地").fill("广西壮族自治区柳州市")
        await page.get_by_label("开户支行名称").fill("营业部")
        bank = demo.ENTERPRISE.bank
        await page.wait_for_function(
            f"() => Array.from(document.querySelectorAll('#dl-branch_name option'))"
            f".map(o => o.value).join('|') === '{bank}柳州分行营业部'"
        )
        assert "找到 1 个匹配项" in await page.locator("#s-branch_name").inner_text()
        await screenshot(page, "bank-account-lookup")
        assert errors == [], errors
    finally:
        await context.close()
