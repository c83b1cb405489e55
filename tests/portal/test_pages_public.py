"""Public pages and signing in, through the gateway to the portal process, as a browser
without scripts sees them."""

from __future__ import annotations

import pytest

from common import demo
from common.testing.platform import Platform

from .conftest import PortalClient

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


async def test_home_shows_the_campaign_figures_and_the_manuals_sections(visitor: PortalClient) -> None:
    page = await visitor.get("/")
    assert page.status_code == 200
    html = page.text
    for text in ("年广西制造业企业培优育强服务券活动进行中", "已成功配额企业", "配额总金额", "待预算审批",
                 "申请成为服务机构", "服务券配额申请", "企业入驻平台", "服务产品", "累计抵扣金额", "累计结算金额",
                 "服务券使用流程", "下单服务", "评价服务", "企业需求", "通用券服务", "设备更新专项券服务"):
        assert text in html, text
    # the session cookie is the browser's only credential: HttpOnly, SameSite
    cookie = page.headers.get("set-cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_signing_in_with_the_password_tab_and_out_again(visitor: PortalClient, portal: Platform) -> None:
    # wrong password: the API's problem is shown on the form, nothing signs in
    bad = await visitor.submit("/login", "/login?mode=password", captcha=True, phone=demo.ENTERPRISE.phone, password="wrong-password-1")
    assert bad.status_code in (401, 422)
    assert "退出登录" not in bad.text and 'role="alert"' in bad.text
    page = await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    assert demo.ENTERPRISE.name in page.text
    out = await visitor.submit("/", "/logout")
    assert "已退出登录" in out.text and "退出登录</button>" not in out.text


async def test_a_form_without_its_csrf_token_changes_nothing(visitor: PortalClient) -> None:
    await visitor.get("/login")
    response = await visitor.http.post("/logout", data={})
    assert response.status_code == 403
    assert "页面已过期" in response.text
