"""The home page and signing in, in a real browser (Debian's Chromium): no script errors,
usable at a phone's width, the bell present once signed in."""

from __future__ import annotations

from typing import Any

import pytest

from common import demo
from common.testing.platform import Platform

from .conftest import ConsoleErrors, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


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
