"""人脸认证 through the portal with a real vendor's flow: identity runs (as its own process)
against a fake of Aliyun's real-person verification started by the test on 127.0.0.1. The
verify page shows the vendor's link and its QR code (an SVG the portal makes: the CSP admits
images from itself only), 我已完成人脸认证 asks identity to check with the vendor, and the
page says so when the check is still pending or has failed; a pass makes the seal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common import demo
from common.testing.infra import MakeDb
from common.testing.platform import Platform, start_platform
from common.testing.rabbit import RabbitNamespace
from common.testing.vendor_fakes import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    CERTIFY_URL,
    Cloudauth,
    FakeVendor,
    serve,
)
from web.routers.orders import qr_svg

from .conftest import ConsoleErrors, PortalClient
from .test_browser_pages import sign_in
from .test_pages_orders import post, signed_in, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(300)]

_VERIFY = re.compile(r"/verify/([0-9a-fA-F-]{36})")


@pytest.fixture(scope="module")
def cloudauth() -> Iterator[tuple[FakeVendor, Cloudauth]]:
    with serve() as vendor:
        answer = Cloudauth()
        vendor.answer(answer)
        yield vendor, answer


@pytest_asyncio.fixture(scope="module")
async def portal(
    module_fresh_db: MakeDb,
    module_rabbit: RabbitNamespace,
    tmp_path_factory: pytest.TempPathFactory,
    cloudauth: tuple[FakeVendor, Cloudauth],
) -> AsyncIterator[Platform]:
    vendor, _ = cloudauth
    face = {
        "IDENTITY_FACE_VERIFIER": "aliyun",
        "IDENTITY_ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY_ID,
        "IDENTITY_ALIYUN_ACCESS_KEY_SECRET": ALIYUN_SECRET,
        "IDENTITY_ALIYUN_FACE_SCENE_ID": "1000000006",
        "IDENTITY_FACEID_ENDPOINT": vendor.endpoint,
        "IDENTITY_VENDOR_RETRY_WAIT_SECONDS": "0",
    }
    async with start_platform(
        module_fresh_db,
        module_rabbit,
        tmp_path_factory.mktemp("portal-face"),
        portal=True,
        demo=True,
        overrides=face,
    ) as started:
        yield started


def check_action(page: httpx.Response) -> str:
    found = re.search(r'action="(/verify/[^"]+/check\?next=[^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1).replace("&amp;", "&")


async def start_seal(client: PortalClient) -> tuple[httpx.Response, str]:
    await client.get("/me/seal")
    page = await post(client, "/me/seal", agree="1")
    found = _VERIFY.search(str(page.url))
    assert found, str(page.url)
    return page, found.group(1)


async def test_the_seal_through_the_vendors_page_its_qr_code_and_the_check(
    portal: Platform, cloudauth: tuple[FakeVendor, Cloudauth]
) -> None:
    _vendor, answer = cloudauth
    owner = await signed_in(portal, demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)

    page, vid = await start_seal(owner)
    url = CERTIFY_URL.format("c-1")
    # The vendor's page: a link and its QR code; no simulated 通过 / 不通过 with a vendor.
    assert f'<a href="{url}" target="_blank" rel="noopener noreferrer">{url}</a>' in page.text
    assert f'<img src="/verify/{vid}/qr.svg" alt="人脸认证二维码"' in page.text
    assert "我已完成人脸认证" in page.text and "扫描下方二维码" in page.text
    assert "/pass?" not in page.text and "/fail?" not in page.text
    assert "'self'" in page.headers["content-security-policy"]  # the QR code comes from the portal

    qr = await owner.http.get(f"/verify/{vid}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert qr.content == qr_svg(url) and b"<svg" in qr.content
    assert qr.headers["cache-control"] == "private, no-store"

    # A reload shows it again (the API keeps the vendor's page).
    again = await owner.get(f"/verify/{vid}?next=/me/seal")
    assert f'href="{url}"' in again.text

    # 我已完成人脸认证 before the person finished on the phone: still pending, said so.
    pending = await post(owner, check_action(page))
    assert _VERIFY.search(str(pending.url)) and "尚未查询到人脸认证结果" in text_of(pending)
    assert f'href="{url}"' in pending.text

    # The vendor says the face did not match: failed, back to the seal page, no seal.
    answer.results["c-1"] = ("F", "204")
    failed = await post(owner, check_action(pending))
    assert str(failed.url).endswith("/me/seal"), str(failed.url)
    assert "人脸认证未通过" in text_of(failed) and "开始身份认证" in failed.text
    gone = await owner.http.get(f"/verify/{vid}/qr.svg")
    assert gone.status_code == 404  # decided: no page to open any more

    # Again, and this time the person passes: the seal is made.
    page, _vid = await start_seal(owner)
    assert f'href="{CERTIFY_URL.format("c-2")}"' in page.text
    # The vendor is out (its system error, tried again, then 503): the page says so, stays.
    answer.results["c-2"] = "500"
    out = await post(owner, check_action(page))
    assert _VERIFY.search(str(out.url)) and "人脸认证服务暂不可用" in text_of(out)
    answer.results["c-2"] = ("T", "200")
    done = await post(owner, check_action(out))
    assert "电子签章已制作完成" in text_of(done), text_of(done)[:2000]
    await owner.aclose()


async def test_in_a_browser_the_qr_code_shows_under_the_csp_and_the_check_makes_the_seal(
    portal: Platform, cloudauth: tuple[FakeVendor, Cloudauth], browser: Any
) -> None:
    _vendor, answer = cloudauth
    context = await browser.new_context(base_url=portal.gateway_url, locale="zh-CN")
    try:
        await sign_in(context, demo.PROVIDER.phone, demo.DEMO_PASSWORD)
        errors = ConsoleErrors()  # a CSP violation is a console error
        page = errors.watch(await context.new_page())

        async def late(route: Any) -> None:  # the image arrives after the page: still shown
            await asyncio.sleep(1)
            await route.continue_()

        await page.route("**/qr.svg", late)
        await page.goto("/me/seal")
        await page.get_by_label("我已阅读并同意《电子签章使用协议》").check()
        await page.get_by_role("button", name="开始身份认证").click()
        await page.get_by_role("heading", name="人脸认证").wait_for()
        qr = page.get_by_role("img", name="人脸认证二维码")
        await qr.wait_for()
        # Seen once the image has arrived (loaded or broken): on the page is not yet loaded.
        loaded = await qr.evaluate(
            """img => img.complete ? img.naturalWidth > 0 : new Promise(done => {
                img.addEventListener("load", () => done(img.naturalWidth > 0));
                img.addEventListener("error", () => done(false));
            })"""
        )
        assert loaded, "the QR code did not load"
        certify_id = f"c-{answer.started}"
        link = page.get_by_role("link", name=CERTIFY_URL.format(certify_id))
        assert await link.get_attribute("target") == "_blank"
        assert await page.get_by_role("button", name="通过", exact=True).count() == 0

        answer.results[certify_id] = ("T", "200")
        await page.get_by_role("button", name="我已完成人脸认证").click()
        await page.get_by_text("电子签章已制作完成").first.wait_for()
        assert errors == [], errors
    finally:
        await context.close()
