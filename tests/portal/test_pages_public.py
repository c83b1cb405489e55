"""Public pages and the account pages, through the gateway to the portal process, as a browser
without scripts sees them (and, for 获取验证码, as portal.js asks for it)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common import demo
from common.money import format_wan, format_yuan
from common.testing.api_client import ApiDriver, Session, random_phone
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import PortalClient

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

# Extra listed products (企业诊断) so the general listing has two pages of 12.
EXTRA_PRODUCTS = 5
_CARD = re.compile(r'<h3><a href="/products/([^"]+)">([^<]+)</a></h3>')


def text_of(page: httpx.Response) -> str:
    """What a reader sees in the page's main part: no tags, whitespace collapsed."""
    found = re.search(r"<main\b.*?</main>", page.text, re.S)
    part = found.group(0) if found else page.text
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", part)))


def product_names(page: httpx.Response) -> list[str]:
    return [html.unescape(name) for _id, name in _CARD.findall(page.text)]


@pytest_asyncio.fixture(scope="module")
async def api(portal: Platform) -> AsyncIterator[ApiDriver]:
    async with httpx.AsyncClient(base_url=portal.gateway_url, timeout=30) as client:
        yield ApiDriver(client)


@pytest_asyncio.fixture(scope="module")
async def admin(api: ApiDriver) -> Session:
    return await api.login(ADMIN_PHONE, ADMIN_PASSWORD)


@pytest_asyncio.fixture(scope="module")
async def extra_products(api: ApiDriver, admin: Session) -> list[dict[str, Any]]:
    """The demo provider lists five more 企业诊断 products (created, submitted, approved)."""
    provider = await api.login(demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    made = []
    for n in range(EXTRA_PRODUCTS):
        body = {
            "name": f"分页测试诊断服务{n + 1}",
            "category": "企业诊断",
            "description": "用于分页测试的企业诊断服务",
            "deliverables": "诊断报告",
            "acceptance_criteria": "双方确认",
            "market_price_fen": (1000 + n * 100) * 100,
            "platform_price_fen": (900 + n * 100) * 100,
            "max_subsidy_fen": 10000,
        }
        r = await api.client.post(api.url("/me/products"), json=body, headers=provider.headers)
        assert r.status_code == 201, r.text
        product = r.json()
        r = await api.client.post(api.url(f"/me/products/{product['id']}/submit"), headers=provider.headers)
        assert r.status_code == 200, r.text
        r = await api.client.post(
            api.url(f"/admin/products/{product['id']}/approve"), json={}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        made.append({**product, **body})
    return made


async def listing(api: ApiDriver, **params: Any) -> dict[str, Any]:
    r = await api.client.get(api.url("/products"), params={"page_size": 100, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- home ------------------------------------------------------------------------------------


async def test_home_shows_the_campaign_figures_and_the_manuals_sections(visitor: PortalClient) -> None:
    page = await visitor.get("/")
    assert page.status_code == 200
    html_ = page.text
    for text in (
        "年广西制造业企业培优育强服务券活动进行中",
        "已成功配额企业",
        "配额总金额",
        "待预算审批",
        "申请成为服务机构",
        "服务券配额申请",
        "企业入驻平台",
        "服务产品",
        "累计抵扣金额",
        "累计结算金额",
        "服务券使用流程",
        "下单服务",
        "评价服务",
        "企业需求",
        "通用券服务",
        "设备更新专项券服务",
    ):
        assert text in html_, text
    # the enterprises' and the providers' yearly caps, both from GET /campaigns/current
    assert "500万元/年" in text_of(page) and "30万元/年" in text_of(page)
    # the session cookie is the browser's only credential: HttpOnly, SameSite
    cookie = page.headers.get("set-cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_home_shows_the_platforms_figures_in_wan(visitor: PortalClient, api: ApiDriver) -> None:
    stats = (await api.client.get(api.url("/portal/stats"))).json()
    assert stats["quota_total_fen"] > 0  # the demo enterprise's voucher
    page = await visitor.get("/")
    shown = text_of(page)
    assert f"配额总金额 {format_wan(stats['quota_total_fen'])} 万元" in shown
    assert f"待预算审批 {format_wan(stats['pending_budget_fen'])} 万元" in shown
    assert f"已成功配额企业 {stats['enterprises_with_quota']} 家" in shown
    assert f"已有 {stats['enterprises']} 家 企业入驻平台" in shown
    assert f"{stats['products']} 项 服务产品" in shown
    assert f"{format_wan(stats['deducted_fen'])} 万元 累计抵扣金额" in shown
    assert f"{format_wan(stats['settled_fen'])} 万元 累计结算金额" in shown
    # the four policy links open the notices
    notices = (await api.client.get(api.url("/notices"))).json()["items"]
    for notice in notices[:4]:
        assert f'href="/notices/{notice["id"]}"' in page.text


# --- 通用券服务 / 设备更新专项券服务 -------------------------------------------------------------------


async def test_the_two_listings_show_their_own_categories_and_products(
    visitor: PortalClient, api: ApiDriver, extra_products: list[dict[str, Any]]
) -> None:
    general = await listing(api, voucher_type="general")
    special = await listing(api, voucher_type="special")
    page = await visitor.get("/products", type="special")
    shown = text_of(page)
    assert "设备更新专项券服务" in shown and f"共为您找到{special['total']}个服务产品" in shown
    assert sorted(product_names(page)) == sorted(p["name"] for p in special["items"])
    assert {p["category"] for p in special["items"]} <= {"直接设备租赁", "融资担保"}
    assert "数字化转型" not in re.sub(r'<nav class="main-nav".*?</nav>', "", page.text, flags=re.S)
    # each card: name, category, provider, 平台销售价, 市场指导价, sales
    item = special["items"][0]
    for text in (
        item["name"],
        item["category"],
        item["provider_name"],
        "平台销售价",
        "市场指导价",
        "销量",
        f"{format_yuan(item['platform_price_fen'])}元",
        f"{format_yuan(item['market_price_fen'])}元",
    ):
        assert text in shown, text

    page = await visitor.get("/products", type="general")
    assert f"共为您找到{general['total']}个服务产品" in text_of(page)
    assert "直接设备租赁" not in product_names(page)
    for category in ("企业诊断", "数字化转型", "其他服务"):
        assert f">{category}</a>" in page.text


async def test_category_keyword_price_range_and_sort(
    visitor: PortalClient, api: ApiDriver, extra_products: list[dict[str, Any]]
) -> None:
    page = await visitor.get("/products", type="general", category="企业诊断")
    expected = await listing(api, voucher_type="general", category="企业诊断")
    assert expected["total"] == 1 + EXTRA_PRODUCTS
    assert sorted(product_names(page)) == sorted(p["name"] for p in expected["items"])

    page = await visitor.get("/products", type="general", q="分页测试")
    assert sorted(product_names(page)) == sorted(p["name"] for p in extra_products)

    # 最低价格 / 最高价格 typed in yuan; sorted by 价格 low to high, then high to low
    page = await visitor.get(
        "/products", type="general", min_price_fen="950", max_price_fen="1200.50", sort="price", order="asc"
    )
    names = product_names(page)
    prices = {p["name"]: p["platform_price_fen"] for p in extra_products}
    assert names == [
        p["name"]
        for p in sorted(extra_products, key=lambda p: p["platform_price_fen"])
        if 95000 <= p["platform_price_fen"] <= 120050
    ]
    assert names and all(95000 <= prices[n] <= 120050 for n in names)
    assert 'value="950"' in page.text and 'value="1200.50"' in page.text  # the filter stays filled
    down = await visitor.get("/products", type="general", q="分页测试", sort="price", order="desc")
    assert product_names(down) == [
        p["name"] for p in sorted(extra_products, key=lambda p: -p["platform_price_fen"])
    ]
    # the sort links: 销量 / 价格 / 销售额, the current one turns its order round
    assert "销量" in down.text and "销售额" in down.text
    assert re.search(r'sort=price&amp;order=asc"[^>]*aria-current="true"', down.text)
    by_sales = await visitor.get("/products", type="general", sort="sales", order="desc")
    api_sales = await listing(api, voucher_type="general", sort="sales", order="desc", page_size=12)
    assert product_names(by_sales) == [p["name"] for p in api_sales["items"]]

    # a price that is not yuan: said next to the field, the list unfiltered
    bad = await visitor.get("/products", type="general", min_price_fen="abc")
    assert bad.status_code == 200 and "最低价格应为元" in bad.text


async def test_paging_through_the_general_listing(
    visitor: PortalClient, api: ApiDriver, extra_products: list[dict[str, Any]]
) -> None:
    everything = await listing(api, voucher_type="general", sort="price", order="asc")
    assert everything["total"] > 12
    first = await visitor.get("/products", type="general", sort="price", order="asc")
    assert product_names(first) == [p["name"] for p in everything["items"][:12]]
    assert "下一页" in first.text and f"共 {everything['total']} 条" in text_of(first)
    following = re.search(r'href="([^"]*page=2)"', first.text)
    assert following, "no link to the next page"
    second = await visitor.get(html.unescape(following.group(1)))
    assert product_names(second) == [p["name"] for p in everything["items"][12:24]]
    assert "上一页" in second.text


# --- 服务产品详情 ----------------------------------------------------------------------------------


async def _demo_product(api: ApiDriver) -> dict[str, Any]:
    found = await listing(api, q="专利分级评价")
    assert found["items"], "the demo product 专利分级评价 is missing"
    return dict(found["items"][0])


async def test_product_detail_for_a_visitor(visitor: PortalClient, api: ApiDriver) -> None:
    product = await _demo_product(api)
    detail = (await api.client.get(api.url(f"/products/{product['id']}"))).json()
    page = await visitor.get(f"/products/{product['id']}")
    shown = text_of(page)
    card = detail["provider"]
    for text in (
        product["name"],
        f"市场指导价 {format_yuan(detail['market_price_fen'])}元",
        f"平台销售价 {format_yuan(detail['platform_price_fen'])}元",
        f"拥有{card['product_count']}个产品",
        f"服务电话 {card['phone']}",
        card["address"],
        f"工作时间 {card['working_hours']}",
        "访问次数:",
        f"申请次数: {detail['applications']}",
        detail["description"],
        detail["deliverables"],
        detail["acceptance_criteria"],
        "加入收藏",
    ):
        assert text in shown, text
    assert f'href="/orders/new?product_id={product["id"]}"' in page.text and "申请服务" in shown
    assert f'href="/providers/{card["id"]}"' in page.text
    assert not re.search(r"券后价 [\d,.]+元", shown)  # only a signed-in enterprise sees its voucher
    assert "登录 后可查看本产品的券后价" in shown
    # every visit counts
    visits = int(re.search(r"访问次数: (\d+)", shown).group(1))  # type: ignore[union-attr]
    again = text_of(await visitor.get(f"/products/{product['id']}"))
    assert f"访问次数: {visits + 1}" in again


async def test_the_demo_enterprise_sees_its_voucher_on_the_detail(
    visitor: PortalClient, api: ApiDriver
) -> None:
    product = await _demo_product(api)
    enterprise = await api.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    detail = (await api.client.get(api.url(f"/products/{product['id']}"), headers=enterprise.headers)).json()
    preview = detail["voucher_preview"]
    assert preview, "the demo enterprise has a general voucher"
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    shown = text_of(await visitor.get(f"/products/{product['id']}"))
    valid_from, valid_to = preview["valid_from"], preview["valid_to"]
    for text in (
        f"券后价 {format_yuan(preview['price_after_fen'])}元",
        f"最高补贴 {format_yuan(preview['max_subsidy_fen'])}元",
        f"用券有效期 {valid_from[:4]}年{valid_from[5:7]}月{valid_from[8:10]}日 ~ "
        f"{valid_to[:4]}年{valid_to[5:7]}月{valid_to[8:10]}日",
    ):
        assert text in shown, text


async def test_favourite_toggles_and_a_visitor_is_sent_to_sign_in(
    visitor: PortalClient, api: ApiDriver
) -> None:
    product = await _demo_product(api)
    page = f"/products/{product['id']}"
    # a visitor: to 登录, and back to the product after it
    sent = await visitor.submit(page, f"{page}/favorite", favorited="0")
    assert "/login" in str(sent.url) and "请先登录" in sent.text
    assert f"next=/products/{product['id']}" in str(sent.url).replace("%2F", "/")

    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    before = await visitor.get(page)
    assert "加入收藏" in before.text and "取消收藏" not in before.text
    added = await visitor.submit(page, f"{page}/favorite", favorited="0")
    assert "已加入收藏" in added.text and "取消收藏" in added.text
    enterprise = await api.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    mine = (await api.client.get(api.url("/me/favorites"), headers=enterprise.headers)).json()
    assert product["id"] in [p["id"] for p in mine["items"]]
    removed = await visitor.submit(page, f"{page}/favorite", favorited="1")
    assert "已取消收藏" in removed.text and "加入收藏" in removed.text
    mine = (await api.client.get(api.url("/me/favorites"), headers=enterprise.headers)).json()
    assert product["id"] not in [p["id"] for p in mine["items"]]


async def test_provider_page_lists_its_products(visitor: PortalClient, api: ApiDriver) -> None:
    product = await _demo_product(api)
    org = (
        await api.client.get(api.url(f"/providers/{product['provider_id']}"), params={"page_size": 12})
    ).json()
    page = await visitor.get(f"/providers/{product['provider_id']}")
    shown = text_of(page)
    assert org["name"] in shown and f"拥有{org['product_count']}个产品" in shown
    assert f"服务电话 {org['phone']}" in shown and org["address"] in shown
    assert sorted(product_names(page)) == sorted(p["name"] for p in org["products"]["items"])
    if org["products"]["total"] > 12:
        assert "下一页" in page.text
    missing = await visitor.get("/providers/no-such-provider")
    assert missing.status_code == 404


# --- 企业需求 ---------------------------------------------------------------------------------------


async def test_demand_board_and_a_providers_response(visitor: PortalClient, api: ApiDriver) -> None:
    board = (await api.client.get(api.url("/demands"))).json()
    assert board["items"], "the demo demand is missing"
    demand = board["items"][0]
    page = await visitor.get("/demands")
    shown = text_of(page)
    budget = f"{format_yuan(demand['budget_fen'])}元" if demand["budget_mode"] == "fixed" else "面议"
    for text in (
        demand["demand_no"],
        demand["name"],
        f"预算金额: {budget}",
        demand["phone"],
        f"目前已有{demand['response_count']}家服务机构申请对接",
        f"共为您找到{board['total']}个相关信息",
        "我要对接",
        "查看需求详情",
        "发布需求",
    ):
        assert text in shown, text
    assert "*" in demand["phone"] and 'href="/me/demands/new"' in page.text
    # by category and keyword
    other = "融资担保" if demand["category"] != "融资担保" else "企业诊断"
    assert demand["name"] not in text_of(await visitor.get("/demands", category=other))
    assert demand["name"] in text_of(await visitor.get("/demands", category=demand["category"]))
    assert demand["name"] not in text_of(await visitor.get("/demands", q="没有这样的需求关键字"))

    # a visitor is told who may respond; an enterprise too
    detail = f"/demands/{demand['id']}"
    assert "服务机构登录后可对接" in text_of(await visitor.get(detail))
    enterprise = PortalClient(visitor.base_url)
    try:
        await enterprise.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
        assert "仅平台的服务机构可申请对接" in text_of(await enterprise.get(detail))
    finally:
        await enterprise.aclose()

    # the provider: a wrong phone is said next to the field; then 我要对接 goes through
    await visitor.login(demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    form = await visitor.get(detail)
    assert 'name="contact_name"' in form.text and 'name="message"' in form.text
    bad = await visitor.submit(
        detail, f"{detail}/responses", contact_name="王经理", phone="12345", message="我们可以提供设计方案"
    )
    assert bad.status_code == 422 and 'id="e-phone"' in bad.text
    done = await visitor.submit(
        detail,
        f"{detail}/responses",
        contact_name="王经理",
        phone="13912345678",
        message="我们可以提供设计方案",
    )
    shown = text_of(done)
    assert "已提交对接申请" in shown and "贵机构已申请对接该需求" in shown
    assert f"目前已有{demand['response_count'] + 1}家服务机构申请对接" in shown
    owner = await api.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    responses = (
        await api.client.get(api.url(f"/me/demands/{demand['id']}/responses"), headers=owner.headers)
    ).json()
    assert [(r["contact_name"], r["phone"]) for r in responses["items"]] == [("王经理", "13912345678")]


# --- 政策通知 ---------------------------------------------------------------------------------------


async def test_notices_and_a_notice(visitor: PortalClient, api: ApiDriver) -> None:
    page = await visitor.get("/notices")
    shown = text_of(page)
    for title in ("服务券管理办法", "企业操作指南", "服务商进驻操作指南", "揭榜"):
        assert title in shown, title
    policies = text_of(await visitor.get("/notices", kind="policy"))
    assert "服务券管理办法" in policies and "服务商进驻操作指南" not in policies
    notice = (await api.client.get(api.url("/notices"))).json()["items"][0]
    full = (await api.client.get(api.url(f"/notices/{notice['id']}"))).json()
    one = await visitor.get(f"/notices/{notice['id']}")
    assert one.status_code == 200 and notice["title"] in text_of(one)
    body_words = text_of(httpx.Response(200, text=full["body_html"])).strip()
    assert body_words[:20] in text_of(one)
    assert (await visitor.get("/notices/no-such-notice")).status_code == 404


# --- 账号 ------------------------------------------------------------------------------------------


async def test_signing_in_with_the_password_tab_and_out_again(
    visitor: PortalClient, portal: Platform
) -> None:
    # wrong password: the API's problem is shown on the form, nothing signs in
    bad = await visitor.submit(
        "/login",
        "/login?mode=password",
        captcha=True,
        phone=demo.ENTERPRISE.phone,
        password="wrong-password-1",
    )
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


async def _latest_code(visitor: PortalClient, phone: str, purpose: str) -> str:
    latest = (await visitor.http.get("/api/v1/dev/sms-codes/latest", params={"phone": phone})).json()
    assert latest["purpose"] == purpose
    return str(latest["code"])


async def test_register_with_an_sms_code_lands_signed_in(visitor: PortalClient) -> None:
    phone = random_phone()
    page = await visitor.get("/register")
    for text in ("企业名称", "手机号", "图形验证码", "手机验证码", "获取验证码", "立即注册"):
        assert text in page.text, text
    assert 'src="data:image/png;base64,' in page.text
    # 获取验证码 without scripts: the form goes to the portal, the code is sent, a new captcha comes back
    sent = await visitor.submit(
        "/register", captcha=True, send_sms="1", enterprise_name="广西注册测试有限公司", phone=phone
    )
    assert sent.status_code == 200 and "验证码已发送" in sent.text
    assert 'value="广西注册测试有限公司"' in sent.text  # what was typed stays
    code = await _latest_code(visitor, phone, "register")
    wrong = await visitor.http.post(
        "/register",
        data={
            "csrf_token": visitor.csrf(sent.text),
            "enterprise_name": "广西注册测试有限公司",
            "phone": phone,
            "sms_code": "000000" if code != "000000" else "111111",
        },
    )
    assert wrong.status_code >= 400 and "退出登录" not in wrong.text
    done = await visitor.http.post(
        "/register",
        data={
            "csrf_token": visitor.csrf(wrong.text),
            "enterprise_name": "广西注册测试有限公司",
            "phone": phone,
            "sms_code": code,
        },
    )
    assert "退出登录" in done.text and "广西注册测试有限公司" in done.text
    assert "注册成功" in done.text and str(done.url).endswith("/me/certification")


async def test_sms_login_spends_the_captcha_and_signs_in_with_a_fresh_one(visitor: PortalClient) -> None:
    phone = demo.ENTERPRISE.phone
    page = await visitor.get("/login", mode="sms")
    assert "验证码登录" in page.text and "获取验证码" in page.text and 'name="password"' not in page.text
    captcha_id, answer = await visitor.captcha_answer(page.text)
    csrf = visitor.csrf(page.text)
    # 获取验证码 as portal.js asks for it: JSON with the page's CSRF token in a header
    refused = await visitor.http.post("/sms-codes", json={"purpose": "login", "phone": phone})
    assert refused.status_code == 403
    sent = await visitor.http.post(
        "/sms-codes",
        json={"purpose": "login", "phone": phone, "captcha_id": captcha_id, "captcha_answer": answer},
        headers={"X-CSRF-Token": csrf},
    )
    body = sent.json()
    assert body["ok"] is True, body
    fresh = body["captcha"]
    assert fresh["captcha_id"] and fresh["captcha_id"] != captcha_id and fresh["image_png_base64"]
    code = await _latest_code(visitor, phone, "login")
    # the captcha the SMS spent is no good any more
    stale = await visitor.http.post(
        "/login?mode=sms",
        data={
            "csrf_token": csrf,
            "phone": phone,
            "sms_code": code,
            "captcha_id": captcha_id,
            "captcha_answer": answer,
        },
    )
    assert stale.status_code >= 400 and "退出登录" not in stale.text
    # the page's new captcha (the re-rendered form's) signs in
    new_id, new_answer = await visitor.captcha_answer(stale.text)
    done = await visitor.http.post(
        "/login?mode=sms",
        data={
            "csrf_token": visitor.csrf(stale.text),
            "phone": phone,
            "sms_code": code,
            "captcha_id": new_id,
            "captcha_answer": new_answer,
        },
    )
    assert "退出登录" in done.text and demo.ENTERPRISE.name in done.text


async def test_password_reset_then_sign_in_with_the_new_password(
    visitor: PortalClient, api: ApiDriver, admin: Session
) -> None:
    # a staff account made without a password sets it with 忘记密码
    phone = random_phone()
    made = await api.client.post(
        api.url("/admin/staff"),
        json={"phone": phone, "name": "重置测试员", "role": "reviewer"},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    page = await visitor.get("/password/reset")
    for text in ("手机号", "图形验证码", "手机验证码", "新密码", "重置密码"):
        assert text in page.text, text
    sent = await visitor.submit("/password/reset", captcha=True, send_sms="1", phone=phone)
    assert "验证码已发送" in sent.text
    code = await _latest_code(visitor, phone, "reset_password")
    weak = await visitor.http.post(
        "/password/reset",
        data={
            "csrf_token": visitor.csrf(sent.text),
            "phone": phone,
            "sms_code": code,
            "new_password": "short",
        },
    )
    assert weak.status_code == 422 and 'role="alert"' in weak.text
    done = await visitor.http.post(
        "/password/reset",
        data={
            "csrf_token": visitor.csrf(weak.text),
            "phone": phone,
            "sms_code": code,
            "new_password": "Reset-pass-2024",
        },
    )
    assert "密码已重置" in done.text and str(done.url).split("?")[0].endswith("/login")
    signed = await visitor.login(phone, "Reset-pass-2024")
    assert "重置测试员" in signed.text
