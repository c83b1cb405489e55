"""管理端 (/admin) through the gateway to the portal process, as staff see it in a browser
without scripts: the dashboard's queues, decisions with their reasons, the designation-list
import, organisations suspended and restored, staff accounts, and the audit log."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from common import demo
from common.testing.api_client import ApiDriver, Session, random_phone
from common.testing.data import invalid_uscc, valid_resident_id, valid_uscc
from common.testing.platform import ADMIN_PASSWORD, ADMIN_PHONE, Platform

from .conftest import PortalClient

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

BASE_DESIGNATION = "一般规模以上制造业企业"


def text_of(html: str) -> str:
    """The page's words, as a reader sees them (tags dropped, spaces collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest_asyncio.fixture
async def api(portal: Platform) -> AsyncIterator[ApiDriver]:
    async with httpx.AsyncClient(base_url=portal.gateway_url, timeout=30) as client:
        yield ApiDriver(client)


@pytest_asyncio.fixture
async def staff(visitor: PortalClient) -> PortalClient:
    await visitor.login(ADMIN_PHONE, ADMIN_PASSWORD)
    return visitor


async def certified_enterprise(api: ApiDriver, name: str) -> tuple[Session, str]:
    """注册 -> 企业信息认证 through the API, until the token carries ``enterprise``."""
    phone = random_phone()
    session = await api.register(phone, name)
    body = {
        "role": "enterprise",
        "name": name,
        "uscc": valid_uscc(),
        "legal_rep_name": "王五",
        "legal_rep_id_type": "resident_id",
        "legal_rep_id_number": valid_resident_id(),
        "sms_code": await api.sms_code(phone, "certify"),
        "agreed": True,
    }
    r = await api.client.post(api.url("/me/organization/certification"), json=body, headers=session.headers)
    assert r.status_code == 200, r.text
    session.access_token = r.json()["access_token"]
    for _ in range(100):
        me = (await api.client.get(api.url("/me"), headers=session.headers)).json()
        if "enterprise" in (me.get("organization") or {}).get("capabilities", []):
            return await api.refresh(session), me["organization"]["id"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} never became a certified enterprise")


async def eventually_on(visitor: PortalClient, path: str, words: str, within: float = 20) -> str:
    """The page at ``path`` (its words) once it shows ``words`` (events travel between services)."""
    return text_of((await visitor.until(path, words, within=within)).text)


async def test_the_administrator_lands_on_the_dashboard_with_every_queue(visitor: PortalClient) -> None:
    page = await visitor.login(ADMIN_PHONE, ADMIN_PASSWORD)
    assert page.url.path == "/admin"
    words = text_of(page.text)
    for queue in (
        "配额申请待审核",
        "其中需人工核实",
        "服务机构入驻待审核",
        "服务产品待审核",
        "需求待处理",
        "转账待核实",
        "兑付待审核",
        "兑付待付款",
        "待退款",
        "留言待回复",
    ):
        assert re.search(re.escape(queue) + r"[^ ]* \d+", words), queue
    # the administrator's menu has everything, the staff-only entries included
    for entry in (
        "企业与服务机构",
        "平台人员管理",
        "年度活动设置",
        "政策通知管理",
        "操作日志",
        "企业划型名单导入",
    ):
        assert entry in words, entry


async def test_a_flagged_general_application_is_approved_with_a_reason_and_logged(
    staff: PortalClient, api: ApiDriver
) -> None:
    name = f"广西待核实制造有限公司{uuid.uuid4().hex[:6]}"
    session, _org_id = await certified_enterprise(api, name)
    r = await api.client.post(
        api.url("/me/quota-applications"), json={"voucher_type": "general"}, headers=session.headers
    )
    assert r.status_code == 201, r.text
    application_id = r.json()["id"]

    # the dashboard counts it among the flagged ones; the queue shows the enterprise by name
    dashboard = text_of((await staff.get("/admin")).text)
    flagged = re.search(r"其中需人工核实[^ ]* (\d+)", dashboard)
    assert flagged and int(flagged.group(1)) >= 1, dashboard[:1500]
    queue = "/admin/quota-applications?status=pending_review&flagged=true"
    listed = text_of((await staff.get(queue)).text)
    assert name in listed and "需人工核实" in listed

    # approving a flagged one without a reason: the API's problem, nothing decided
    action = f"/admin/quota-applications/{application_id}/approve?next={quote(queue)}"
    refused = await staff.submit(queue, action, reason="")
    assert refused.status_code >= 400, refused.status_code
    assert name in text_of(refused.text) and 'role="alert"' in refused.text

    done = await staff.submit(queue, action, reason="经核实属规模以上制造业企业")
    assert done.status_code == 200 and "已审核通过" in done.text
    approved = text_of((await staff.get("/admin/quota-applications?status=approved")).text)
    assert name in approved and "经核实属规模以上制造业企业" in approved

    log = await eventually_on(
        staff, "/admin/audit-log?action=quota_application.approve", "经核实属规模以上制造业企业"
    )
    assert "配额申请审核通过" in log


async def test_a_demand_is_approved_in_the_console(staff: PortalClient, api: ApiDriver) -> None:
    enterprise = await api.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    title = f"数字化车间改造咨询{uuid.uuid4().hex[:4]}"
    body = {"name": title, "category": "数字化转型", "budget_mode": "fixed", "budget_fen": 2_000_000,
            "content": "需要对两条产线做数字化改造评估"}  # fmt: skip
    r = await api.client.post(api.url("/me/demands"), json=body, headers=enterprise.headers)
    assert r.status_code == 201, r.text
    demand_id = r.json()["id"]

    pending = await eventually_on(staff, "/admin/demands?status=pending", title)
    assert demo.ENTERPRISE.name in pending and "20,000元" in pending
    back = quote("/admin/demands?status=pending")
    done = await staff.submit("/admin/demands", f"/admin/demands/{demand_id}/approve?next={back}", reason="")
    assert done.status_code == 200 and "已审核通过，需求已发布" in done.text
    published = text_of((await staff.get("/admin/demands?status=published")).text)
    assert title in published
    board = text_of((await staff.get("/demands")).text)
    assert title in board


async def test_staff_see_every_voucher_under_its_enterprises_name(staff: PortalClient) -> None:
    page = text_of((await staff.get("/admin/vouchers?voucher_type=general")).text)
    assert "服务券一览" in page and demo.ENTERPRISE.name in page, page
    assert "暂无服务券" not in page


async def test_a_designation_list_import_shows_its_report(staff: PortalClient) -> None:
    good, bad = valid_uscc(), invalid_uscc()
    csv = f"uscc,designation\n{good},{BASE_DESIGNATION}\n{bad},{BASE_DESIGNATION}\n".encode()
    page = await staff.submit("/admin/designations", files={"file": ("划型名单.csv", csv, "text/csv")})
    assert page.status_code == 200
    words = text_of(page.text)
    assert "导入结果" in words and "成功导入 1 条" in words and "未导入 1 条" in words
    assert bad in words and good not in words  # the rejected row, with its reason
    assert re.search(re.escape(bad) + r" .*信用代码", words), words[-1500:]


async def test_an_organisation_is_suspended_and_restored(staff: PortalClient, api: ApiDriver) -> None:
    name = f"广西暂停测试有限公司{uuid.uuid4().hex[:6]}"
    await certified_enterprise(api, name)
    search = "/admin/organizations?" + str(httpx.QueryParams({"q": name}))
    listed = await eventually_on(staff, search, name)
    assert "正常" in listed
    org_id = re.search(r'action="/admin/organizations/([^/]+)/suspend', (await staff.get(search)).text)
    assert org_id, "no 暂停 form"
    back = quote(search)

    suspended = await staff.submit(
        search, f"/admin/organizations/{org_id.group(1)}/suspend?next={back}", reason="涉嫌虚假申报，暂停核查"
    )
    words = text_of(suspended.text)
    assert "已暂停该单位" in words and "已暂停" in words and "涉嫌虚假申报，暂停核查" in words

    restored = await staff.submit(
        search, f"/admin/organizations/{org_id.group(1)}/restore?next={back}", reason="核查无误，恢复"
    )
    words = text_of(restored.text)
    assert "已恢复该单位" in words and "正常" in words and "涉嫌虚假申报" not in words


async def test_a_staff_account_is_created(staff: PortalClient) -> None:
    phone = random_phone()
    created = await staff.submit("/admin/staff", phone=phone, name="财务员丙", role="finance", password="")
    words = text_of(created.text)
    assert "已新增平台人员：财务员丙（财务人员）" in words
    assert phone in words and "财务员丙" in words

    # the same phone again: the API's problem on the form
    again = await staff.submit("/admin/staff", phone=phone, name="财务员丁", role="reviewer", password="")
    assert again.status_code >= 400 and 'role="alert"' in again.text


async def test_an_enterprise_user_is_told_the_console_is_for_staff(visitor: PortalClient) -> None:
    await visitor.login(demo.ENTERPRISE.phone, demo.DEMO_PASSWORD)
    page = await visitor.get("/admin")
    assert page.status_code == 403
    assert "仅平台人员可进入管理端" in page.text
    queue = await visitor.get("/admin/quota-applications")
    assert queue.status_code == 403
