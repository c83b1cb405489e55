"""The provider's pages (申请入驻平台, 服务机构信息, 服务产品管理, 服务券兑付) through the gateway to
the portal process, as a browser without scripts sees them. Staff decisions are the API's
(another area's pages), made here with the platform's administrator."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio

from common import demo
from common.testing.api_client import ApiDriver, Session, random_phone
from common.testing.bus import wait_until
from common.testing.data import valid_resident_id, valid_uscc
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import PortalClient

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

T = TypeVar("T")
PASSWORD = "Portal-h4-2024x"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PROFILE = {
    "profile": "专注制造业数字化转型与企业诊断服务",
    "contact_name": "周六",
    "contact_phone": "0771-5612345",
    "address": "南宁市青秀区民族大道 166 号",
    "working_hours": "周一至周五 08:30:00-17:30:00",
}


def pdf(name: str) -> tuple[str, bytes, str]:
    return (name, PDF, "application/pdf")


def words(html: str) -> str:
    """The page's text as a reader sees it (tags and the side menu's markup gone)."""
    body = html.split("<main", 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str, within: float = 30
) -> T:
    """``probe``'s value once ``ok`` holds for it (common.testing.bus.wait_until polls)."""
    seen: list[T] = []

    async def holds() -> bool:
        seen.append(await probe())
        return ok(seen[-1])

    await wait_until(holds, within=within, interval=0.3, what=what)
    return seen[-1]


class Api:
    """The public API as a person (or the administrator) uses it, for what another area's
    pages do (certification, staff decisions, the enterprise's side of a deal)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.driver = ApiDriver(client)

    async def call(self, method: str, path: str, who: Session, body: Any = None, status: int = 200) -> Any:
        headers = {**who.headers, "Idempotency-Key": str(uuid.uuid4())}
        r = await self.client.request(method, f"/api/v1{path}", json=body, headers=headers)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else None

    async def admin(self) -> Session:
        return await self.driver.login(ADMIN_PHONE, ADMIN_PASSWORD)

    async def organisation(self, name: str, *, certified: bool = True) -> tuple[Session, str]:
        """注册 with a password (so the portal's 账号密码登录 works), certified when asked."""
        phone = random_phone()
        session = await self.driver.register(phone, name)
        await self.call("PUT", "/me/password", session, {"new_password": PASSWORD}, 204)
        if certified:
            await self.certify(session, name)
        return session, phone

    async def certify(self, session: Session, name: str) -> None:
        code = await self.driver.sms_code(session.phone, "certify")
        body = {
            "role": "enterprise",
            "name": name,
            "uscc": valid_uscc(),
            "legal_rep_name": "王五",
            "legal_rep_id_type": "resident_id",
            "legal_rep_id_number": valid_resident_id(),
            "sms_code": code,
            "agreed": True,
        }
        certified = await self.call("POST", "/me/organization/certification", session, body)
        session.access_token = certified["access_token"]

    async def bank_account(self, session: Session, name: str) -> None:
        account = {
            "account_name": name,
            "bank_name": "中国工商银行",
            "bank_region": "广西壮族自治区南宁市",
            "branch_name": "中国工商银行南宁民族支行",
            "account_number": "6222020000" + str(uuid.uuid4().int)[:9],
        }
        await self.call("PUT", "/me/organization/bank-account", session, account)

    async def file(self, who: Session, name: str) -> str:
        r = await self.client.post("/api/v1/files", files={"file": pdf(name)}, headers=who.headers)
        assert r.status_code == 201, r.text
        return str(r.json()["file_id"])

    async def seal(self, who: Session) -> None:
        if (await self.client.get("/api/v1/me/seal", headers=who.headers)).status_code == 200:
            return
        await self.call("POST", "/me/seal", who, {"verification_token": await self.face(who, "seal")}, 201)

    async def face(self, who: Session, purpose: str, object_id: str | None = None) -> str:
        body = {"purpose": purpose, **({"object_id": object_id} if object_id else {})}
        started = await self.call("POST", "/me/identity-verifications", who, body, 201)
        vid = started["verification_id"]
        await self.client.post(f"/api/v1/dev/identity-verifications/{vid}/pass")
        return str((await self.call("GET", f"/me/identity-verifications/{vid}", who))["token"])


@pytest_asyncio.fixture
async def api(portal: Platform) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=portal.gateway_url, timeout=30) as client:
        yield Api(client)


async def test_a_new_organisation_applies_through_the_portal_and_is_shown_the_provider_menu(
    visitor: PortalClient, api: Api
) -> None:
    name = "广西入驻测试科技有限公司"
    owner, phone = await api.organisation(name, certified=False)
    await visitor.login(phone, PASSWORD)

    # not certified yet: told to certify first, no form
    page = words((await visitor.get("/me/provider-application")).text)
    assert "请先完成企业信息认证" in page and "提交申请" not in page
    assert 'href="/me/certification"' in visitor.last.text  # type: ignore[union-attr]

    # certified (another area's page; here the API), no receiving account yet: the form, and the warning
    await api.certify(owner, name)
    page = words((await visitor.get("/me/provider-application")).text)
    assert "填写申请信息" in page and "资质证明" in page and "提交申请" in page
    assert "尚未填写对公收款账户" in page and 'href="/me/bank-account"' in visitor.last.text  # type: ignore[union-attr]

    # a category missing: the API's problem next to the field, what was typed kept
    bad = await visitor.submit(
        "/me/provider-application", files={"proof_file_ids": pdf("营业执照.pdf")}, **PROFILE
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert PROFILE["address"] in bad.text

    applied = await visitor.submit(
        "/me/provider-application",
        files={"proof_file_ids": pdf("营业执照.pdf")},
        categories=["数字化转型", "企业诊断"],
        **PROFILE,
    )
    text = words(applied.text)
    assert applied.status_code == 200 and "入驻申请已提交" in text and "待审核" in text
    assert "数字化转型、企业诊断" in text and "提交申请" not in text
    assert "服务产品管理" not in text  # not a provider yet
    assert "尚未填写对公收款账户" in text  # what the approval will need

    # staff reject it: the reason shown, the form back with what was sent, to correct
    admin = await api.admin()

    async def pending() -> dict[str, Any]:
        queue = await api.call("GET", "/admin/provider-applications", admin, None)
        return next(a for a in queue["items"] if a["org_name"] == name and a["state"] == "pending_review")

    first = await pending()
    await api.call(
        "POST", f"/admin/provider-applications/{first['id']}/reject", admin, {"reason": "资质证明不清晰"}
    )
    page = await visitor.get("/me/provider-application")
    text = words(page.text)
    assert "审核不通过" in text and "资质证明不清晰" in text and "重新提交申请" in text
    assert PROFILE["address"] in page.text
    again = await visitor.submit(
        "/me/provider-application",
        files={"proof_file_ids": pdf("营业执照-清晰.pdf")},
        categories=["数字化转型", "企业诊断"],
        **PROFILE,
    )
    assert "入驻申请已提交" in words(again.text) and "待审核" in words(again.text)

    # staff: no approval without a receiving account; with one, approved
    application = await pending()
    assert len(application["proof_file_ids"]) == 1
    await api.call("POST", f"/admin/provider-applications/{application['id']}/approve", admin, {}, 409)
    await api.bank_account(owner, name)
    await api.call("POST", f"/admin/provider-applications/{application['id']}/approve", admin, {})

    page = await eventually(
        lambda: visitor.get("/me/provider-application"),
        lambda r: 'href="/me/provider-profile"' in r.text,
        "the provider menu after the approval",
    )
    text = words(page.text)
    assert "审核通过" in text
    for item in ("服务机构信息", "服务产品管理", "我的服务订单", "服务券兑付"):
        assert item in text, item

    # 服务机构信息: shown, and edited
    profile = words((await visitor.get("/me/provider-profile")).text)
    assert name in profile and PROFILE["contact_phone"] in profile and PROFILE["working_hours"] in profile
    saved = await visitor.submit(
        "/me/provider-profile",
        **{**PROFILE, "working_hours": "周一至周六 09:00:00-18:00:00"},
        categories=["数字化转型", "技术创新"],
    )
    text = words(saved.text)
    assert (
        "服务机构信息已保存" in text
        and "周一至周六 09:00:00-18:00:00" in text
        and "数字化转型、技术创新" in text
    )

    # suspended by the platform: a new product is refused with what to do next
    await api.call(
        "POST", f"/admin/organizations/{application['org_id']}/suspend", admin, {"reason": "核查资质"}
    )
    # (catalog hears of the suspension by identity's event: within seconds, not at once)
    refused = await eventually(
        lambda: visitor.submit(
            "/me/products/new",
            "/me/products",
            name="企业诊断",
            category="企业诊断",
            market_price_fen="100",
            platform_price_fen="100",
            max_subsidy_fen="50",
        ),
        lambda r: r.status_code == 403,
        "a new product refused after the suspension",
    )
    assert "暂停" in words(refused.text) and 'href="/me/messages"' in refused.text


async def test_the_demo_provider_lists_a_product_takes_it_down_and_puts_it_up_again(
    visitor: PortalClient, api: Api
) -> None:
    await visitor.login(demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    listing = words((await visitor.get("/me/products")).text)
    for tab in ("全部", "草稿", "待审核", "审核不通过", "已上架", "已下架"):
        assert tab in listing, tab
    assert "平台销售价(元)" in listing and "市场指导价(元)" in listing and "最高补贴(元)" in listing

    name = f"设备能效诊断-{uuid.uuid4().hex[:6]}"
    fields = {
        "name": name,
        "category": "企业诊断",
        "description": "对企业主要设备进行能效诊断并出具改进建议",
        "deliverables": "",
        "acceptance_criteria": "企业确认诊断报告",
        "market_price_fen": "12000",
        "platform_price_fen": "10000.50",
        "max_subsidy_fen": "5000",
    }
    # yuan the portal cannot read, and a price the API refuses: each told next to its field
    typo = await visitor.submit("/me/products/new", "/me/products", **{**fields, "market_price_fen": "一万"})
    assert typo.status_code == 422 and "市场指导价应为元" in typo.text
    above = await visitor.submit(
        "/me/products/new", "/me/products", **{**fields, "platform_price_fen": "13000"}
    )
    assert above.status_code == 422 and "平台销售价不能高于市场指导价" in above.text

    created = await visitor.submit("/me/products/new", "/me/products", then="save", **fields)
    text = words(created.text)
    assert created.status_code == 200 and "草稿" in text and "未填写服务交付物" in text  # the pre-review flag
    product_id = re.search(r"/me/products/([^/]+)/edit", str(created.url)).group(1)  # type: ignore[union-attr]
    assert 'value="10000.50"' in created.text  # the yuan typed, shown back

    edited = await visitor.submit(
        f"/me/products/{product_id}/edit", **{**fields, "deliverables": "设备能效诊断报告一份"}, then="submit"
    )
    text = words(edited.text)
    assert "已保存并提交审核" in text and name in text and "待审核" in text
    assert "10,000.50" in text and "12,000" in text and "5,000" in text

    admin = await api.admin()
    await api.call("POST", f"/admin/products/{product_id}/approve", admin, {})
    listed = words((await visitor.get("/me/products", status="listed")).text)
    assert name in listed and "已上架" in listed

    down = await visitor.submit(
        "/me/products?status=listed", f"/me/products/{product_id}/unlist?next=/me/products"
    )
    text = words(down.text)
    assert f"「{name}」已下架" in text and "当前状态：已下架" in text and name in text
    assert f'href="/products/{product_id}"' not in down.text  # no public link while unlisted

    up = await visitor.submit("/me/products?status=unlisted", f"/me/products/{product_id}/relist")
    text = words(up.text)
    assert f"「{name}」已上架" in text and "当前状态：已上架" in text

    # a refused action comes back as a message, nothing changes
    again = await visitor.submit("/me/products?status=listed", f"/me/products/{product_id}/relist")
    assert "不能" in words(again.text)


async def test_settlements_empty_and_a_claim_with_the_three_uploads(visitor: PortalClient, api: Api) -> None:
    # the demo provider has no claims: the empty state says what comes there
    await visitor.login(demo.PROVIDER.phone, demo.DEMO_PASSWORD)
    empty = words((await visitor.get("/me/settlements")).text)
    for tab in ("待申请兑付", "待审核", "已兑付", "审核不通过", "已取消"):
        assert tab in empty, tab
    assert "暂无兑付记录" in empty
    await visitor.submit("/me/settlements", "/logout")

    # a fresh provider and the demo enterprise (its general voucher) make one order to its end
    admin = await api.admin()
    name = "广西兑付测试服务有限公司"
    provider, phone = await api.organisation(name)
    await api.bank_account(provider, name)
    applied = await api.call(
        "POST",
        "/me/provider-application",
        provider,
        {**PROFILE, "categories": ["数字化转型"], "proof_file_ids": [await api.file(provider, "执照.pdf")]},
        201,
    )
    await api.call("POST", f"/admin/provider-applications/{applied['id']}/approve", admin, {})
    product = await api.call(
        "POST",
        "/me/products",
        provider,
        {
            "name": "专利分级评价",
            "category": "数字化转型",
            "description": "对企业专利进行分级评价",
            "deliverables": "评价报告一份",
            "acceptance_criteria": "企业确认报告",
            "market_price_fen": 8000,
            "platform_price_fen": 7600,
            "max_subsidy_fen": 13800,
        },
        201,
    )
    await api.call("POST", f"/me/products/{product['id']}/submit", provider)
    await api.call("POST", f"/admin/products/{product['id']}/approve", admin, {})

    await eventually(
        lambda: api.call("GET", "/me", provider),
        lambda me: "provider" in me["organization"]["capabilities"],
        "the provider capability",
    )
    provider = await api.driver.refresh(provider)
    enterprise = await api.driver.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    order = await api.call(
        "POST", "/orders", enterprise, {"product_id": product["id"], "use_voucher": True}, 201
    )
    oid = order["id"]

    async def order_status() -> str:
        return str((await api.call("GET", f"/orders/{oid}", enterprise))["status"])

    await eventually(order_status, lambda s: s == "awaiting_acceptance", "the order placed")
    await api.call("POST", f"/orders/{oid}/accept", provider)
    contract = await eventually(
        lambda: api.client.get(f"/api/v1/orders/{oid}/contract", headers=provider.headers),
        lambda r: r.status_code == 200,
        "the draft contract",
    )
    cid = contract.json()["id"]
    await api.call(
        "PUT", f"/contracts/{cid}", provider, {"total_fen": 7600, "deposit_fen": 0, "terms": "出具评价报告。"}
    )
    await api.call("POST", f"/contracts/{cid}/submit", provider)
    await api.call("POST", f"/contracts/{cid}/agree", enterprise)
    for who in (enterprise, provider):
        await api.seal(who)
        await api.call(
            "POST",
            f"/contracts/{cid}/sign",
            who,
            {"verification_token": await api.face(who, "sign_contract", cid)},
        )
    await eventually(order_status, lambda s: s == "awaiting_service", "paid nothing up front: 待服务")
    await api.call("POST", f"/orders/{oid}/start-service", provider)
    await eventually(order_status, lambda s: s == "in_service", "in service")
    await api.call("POST", f"/orders/{oid}/complete-service", provider)
    await eventually(order_status, lambda s: s == "awaiting_balance", "the balance due")
    plan = await api.call("GET", f"/orders/{oid}/payment", enterprise)
    remittance = await api.call(
        "POST",
        f"/orders/{oid}/remittances",
        enterprise,
        {
            "amount_fen": plan["outstanding_fen"],
            "bank_reference": "HX" + uuid.uuid4().hex[:10],
            "payer_account": "6228480000000000001",
        },
        201,
    )
    await api.call("POST", f"/remittances/{remittance['id']}/confirm", provider)
    await eventually(order_status, lambda s: s == "completed", "completed")

    # the provider's 服务券兑付 in the portal: the open claim, then claimed with three uploads
    await visitor.login(phone, PASSWORD)
    page = await eventually(
        lambda: visitor.get("/me/settlements", state="open"),
        lambda r: "申请兑付" in r.text and order["order_no"] in r.text,
        "the open settlement",
    )
    text = words(page.text)
    assert (
        "待申请兑付 (1)" in text
        and "兑付金额 38 元（叁拾捌元整）" in text
        and f'href="/orders/{oid}"' in page.text
    )
    settlement_id = re.search(r"/me/settlements/([^/\"?]+)/claim", page.text).group(1)  # type: ignore[union-attr]

    # one upload missing: told which, nothing claimed
    partial = await visitor.submit(
        "/me/settlements?state=open",
        f"/me/settlements/{settlement_id}/claim?state=open",
        files=[("invoice_file_ids", pdf("发票.pdf")), ("proof_file_ids", pdf("服务成果.pdf"))],
    )
    assert partial.status_code == 422 and "请上传企业付款凭证" in partial.text

    claimed = await visitor.submit(
        "/me/settlements?state=open",
        f"/me/settlements/{settlement_id}/claim?state=open",
        files=[
            ("invoice_file_ids", pdf("发票.pdf")),
            ("receipt_file_ids", pdf("汇款凭证.pdf")),
            ("proof_file_ids", pdf("服务成果1.pdf")),
            ("proof_file_ids", pdf("服务成果2.pdf")),
        ],
    )
    text = words(claimed.text)
    assert "兑付申请已提交" in text and order["order_no"] in text and "待审核 (1)" in text
    detail = (await api.call("GET", "/me/settlements", provider))["items"][0]
    assert detail["state"] == "claimed" and len(detail["proof_file_ids"]) == 2

    # finance rejects it: the reason shown, and the claim may be made again
    await api.call("POST", f"/admin/settlements/{settlement_id}/reject", admin, {"reason": "发票抬头有误"})
    rejected = words((await visitor.get("/me/settlements", state="rejected")).text)
    assert "发票抬头有误" in rejected and "重新申请兑付" in rejected
