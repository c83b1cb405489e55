"""管理端 (/admin): the platform staff's console.

The dashboard counts every queue the signed-in role works on; each queue is a list with its
status tabs and, on each row, the decisions as forms with their reason field (the API decides
what is allowed and says why not). Administrators also manage organisations, staff accounts,
the campaign, notices and providers' subsidy caps, and read the composed audit log.

The queues share one list route and one decision route, driven by :data:`QUEUES`; the pages
that are not queues (designation import, campaign, staff creation, notices, caps, audit log)
have their own routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from web import labels
from web.client import ApiError
from web.deps import FormInvalid, NotAllowed, Portal, StaffPortal
from web.formatting import yuan, yuan_input
from web.pages import form_problem, link, page_number, quietly

router = APIRouter()

PAGE_SIZE = 20
REVIEWER, FINANCE, ADMINISTRATOR = "reviewer", "finance", "administrator"
STAFF = (REVIEWER, FINANCE)

STAFF_ROLES: tuple[tuple[str, str], ...] = (
    (REVIEWER, labels.ROLES[REVIEWER]),
    (FINANCE, labels.ROLES[FINANCE]),
    (ADMINISTRATOR, labels.ROLES[ADMINISTRATOR]),
)
NOTICE_KINDS: tuple[tuple[str, str], ...] = (
    ("policy", "政策文件"),
    ("guide", "操作指南"),
    ("notice", "通知公告"),
)
SERVICES: tuple[tuple[str, str], ...] = (
    ("", "全部服务"),
    ("identity", "账户与企业"),
    ("quota", "服务券配额"),
    ("catalog", "服务机构与产品"),
    ("orders", "订单"),
    ("contracts", "合同"),
    ("payments", "支付与兑付"),
    ("demands", "需求、留言与公告"),
)
# The audit log's actions in the manual's words (an unknown one is shown as it is).
ACTIONS: dict[str, str] = {
    "quota_application.approve": "配额申请审核通过",
    "quota_application.reject": "配额申请审核不通过",
    "designations.import": "导入企业划型名单",
    "provider_cap.set": "调整服务机构补贴上限",
    "campaign.create": "创建年度活动",
    "campaign.change": "修改年度活动",
    "provider_application.approve": "入驻申请审核通过",
    "provider_application.reject": "入驻申请审核不通过",
    "product.approve": "服务产品审核通过",
    "product.reject": "服务产品审核不通过",
    "demand.open": "查看需求（开始审核）",
    "demand.approve": "需求审核通过",
    "demand.return": "需求退回修改",
    "demand.reject": "需求审核不通过",
    "message.reply": "回复留言",
    "message.close": "关闭留言",
    "notice.publish": "发布公告",
    "notice.edit": "修改公告",
    "notice.withdraw": "撤下公告",
    "remittance.confirm": "确认到账",
    "remittance.reject": "核实未到账",
    "settlement.approve": "兑付审核通过",
    "settlement.reject": "兑付审核不通过",
    "settlement.pay": "兑付付款",
    "refund.mark_refunded": "确认已退款",
    "contract.terminate": "终止合同",
    "contract.termination_refused": "终止合同被拒",
    "organization.suspended": "暂停单位",
    "organization.restored": "恢复单位",
    "staff.created": "新增平台人员",
    "staff.updated": "修改平台人员",
}
TARGETS = {
    "quota_application": "配额申请",
    "provider_application": "入驻申请",
    "product": "服务产品",
    "demand": "需求",
    "message": "留言",
    "notice": "公告",
    "remittance": "转账",
    "settlement": "兑付",
    "refund": "退款",
    "contract": "合同",
    "organization": "单位",
    "user": "平台人员",
    "campaign": "年度活动",
    "designation_list": "划型名单",
    "provider": "服务机构",
}
# Keys of an entry's details worth showing, in the manual's words.
DETAIL_LABELS = {
    "name": "名称",
    "title": "标题",
    "uscc": "统一社会信用代码",
    "demand_no": "需求编号",
    "voucher_no": "券号",
    "voucher_type": "券种",
    "approved_fen": "批准额度",
    "amount_fen": "金额",
    "cap_fen": "补贴上限",
    "before_fen": "原上限",
    "platform_price_fen": "平台销售价",
    "max_subsidy_fen": "最高补贴",
    "accepted": "导入成功",
    "rejected": "导入失败",
    "year": "年度",
    "flagged": "需人工核实",
    "role": "角色",
    "phone": "手机号",
    "refund_reference": "退款流水号",
    "payout_reference": "打款流水号",
    "changes": "变更",
}


# --- who may do what -------------------------------------------------------------------------


def allowed(portal: Portal, roles: tuple[str, ...]) -> bool:
    """Administrators may do everything; ``()`` means administrators only."""
    role = portal.session.role
    return role == ADMINISTRATOR or role in roles


def require(portal: Portal, roles: tuple[str, ...]) -> None:
    if not allowed(portal, roles):
        raise NotAllowed(
            "此页面不属于您的岗位",
            f"您的角色是「{labels.ROLES.get(portal.session.role, portal.session.role)}」，"
            "该功能由其他岗位的平台人员办理。",
            ("/admin", "返回工作台"),
        )


def menu(portal: Portal) -> list[tuple[str, str, str]]:
    """The side menu for the signed-in role: (key, href, text)."""
    items = [("dashboard", "/admin", "工作台")]
    review = [
        ("quota-applications", "/admin/quota-applications", "配额申请审核"),
        ("designations", "/admin/designations", "企业划型名单导入"),
        ("provider-applications", "/admin/provider-applications", "服务机构入驻审核"),
        ("products", "/admin/products", "服务产品审核"),
        ("demands", "/admin/demands", "需求审核"),
    ]
    money = [
        ("remittances", "/admin/remittances", "到账核实"),
        ("settlements", "/admin/settlements", "服务券兑付审核"),
        ("refunds", "/admin/refunds", "退款管理"),
    ]
    common = [
        ("vouchers", "/admin/vouchers", "服务券一览"),
        ("contracts", "/admin/contracts", "合同管理"),
        ("messages", "/admin/messages", "留言管理"),
        ("audit-log", "/admin/audit-log", "操作日志"),
    ]
    admin = [
        ("organizations", "/admin/organizations", "企业与服务机构"),
        ("staff", "/admin/staff", "平台人员管理"),
        ("campaigns", "/admin/campaigns", "年度活动设置"),
        ("notices", "/admin/notices", "政策通知管理"),
    ]
    if allowed(portal, (REVIEWER,)):
        items += review
    if allowed(portal, (FINANCE,)):
        items += money
    items += common
    if allowed(portal, ()):
        items += admin
    return items


def render(portal: Portal, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return portal.render(template, status_code, menu_items=menu(portal), role=portal.session.role, **ctx)


# --- helpers -----------------------------------------------------------------------------------


def here(portal: Portal) -> str:
    url = portal.request.url
    return url.path + (f"?{url.query}" if url.query else "")


# --- the queues --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One button of a queue's row: the API call it makes and the form's fields."""

    path: str  # the API path, {id} filled in
    body: str  # none | reason | reason? | quota | payout | refund | reply | role | active | inactive
    done: str  # the flash after it
    roles: tuple[str, ...]
    method: str = "POST"


@dataclass(frozen=True)
class Queue:
    title: str
    api: str
    template: str
    roles: tuple[str, ...]
    tab_param: str | None = "status"
    tabs: tuple[tuple[str, str], ...] = ()
    default_tab: str | None = None
    filters: tuple[str, ...] = ()  # further query parameters passed to the API
    decisions: dict[str, Decision] = field(default_factory=dict)


QUEUES: dict[str, Queue] = {
    "quota-applications": Queue(
        "配额申请审核",
        "/admin/quota-applications",
        "admin/quota_applications.html",
        (REVIEWER,),
        tabs=(
            ("pending_review", "待审核"),
            ("approved", "审核通过"),
            ("rejected", "审核不通过"),
            ("", "全部"),
        ),
        default_tab="pending_review",
        filters=("flagged", "voucher_type"),
        decisions={
            "approve": Decision(
                "/admin/quota-applications/{id}/approve", "quota", "已审核通过，服务券已发放", (REVIEWER,)
            ),
            "reject": Decision(
                "/admin/quota-applications/{id}/reject", "reason", "已审核不通过，企业将看到原因", (REVIEWER,)
            ),
        },
    ),
    "provider-applications": Queue(
        "服务机构入驻审核",
        "/admin/provider-applications",
        "admin/provider_applications.html",
        (REVIEWER,),
        tabs=(
            ("pending_review", "待审核"),
            ("approved", "审核通过"),
            ("rejected", "审核不通过"),
            ("", "全部"),
        ),
        default_tab="pending_review",
        decisions={
            "approve": Decision(
                "/admin/provider-applications/{id}/approve",
                "reason?",
                "已审核通过，该单位已成为服务机构",
                (REVIEWER,),
            ),
            "reject": Decision(
                "/admin/provider-applications/{id}/reject", "reason", "已审核不通过", (REVIEWER,)
            ),
        },
    ),
    "products": Queue(
        "服务产品审核",
        "/admin/products",
        "admin/products.html",
        (REVIEWER,),
        tabs=(
            ("pending_review", "待审核"),
            ("listed", "已上架"),
            ("rejected", "审核不通过"),
            ("unlisted", "已下架"),
        ),
        default_tab="pending_review",
        filters=("flagged",),
        decisions={
            "approve": Decision(
                "/admin/products/{id}/approve", "reason?", "已审核通过，产品已上架", (REVIEWER,)
            ),
            "reject": Decision("/admin/products/{id}/reject", "reason", "已审核不通过", (REVIEWER,)),
        },
    ),
    "demands": Queue(
        "需求审核",
        "/admin/demands",
        "admin/demands.html",
        (REVIEWER,),
        tabs=(
            ("", "全部"),
            ("pending", "待处理"),
            ("published", "已发布"),
            ("under_review", "待审核"),
            ("returned", "退回修改"),
            ("rejected", "审核不通过"),
            ("closed", "关闭需求"),
        ),
        default_tab="pending",
        decisions={
            "approve": Decision(
                "/admin/demands/{id}/approve", "reason?", "已审核通过，需求已发布", (REVIEWER,)
            ),
            "return": Decision("/admin/demands/{id}/return", "reason", "已退回企业修改", (REVIEWER,)),
            "reject": Decision("/admin/demands/{id}/reject", "reason", "已审核不通过", (REVIEWER,)),
        },
    ),
    "remittances": Queue(
        "到账核实",
        "/admin/remittances",
        "admin/remittances.html",
        (FINANCE,),
        tab_param="state",
        tabs=(("pending", "待核实"), ("confirmed", "已到账"), ("rejected", "未到账"), ("", "全部")),
        default_tab="pending",
        decisions={
            "confirm": Decision("/remittances/{id}/confirm", "none", "已确认到账", (FINANCE,)),
            "reject": Decision("/remittances/{id}/reject", "reason", "已标记为未到账", (FINANCE,)),
        },
    ),
    "settlements": Queue(
        "服务券兑付审核",
        "/admin/settlements",
        "admin/settlements.html",
        (FINANCE,),
        tab_param="state",
        tabs=(
            ("claimed", "待审核"),
            ("approved", "待付款"),
            ("paid", "已兑付"),
            ("rejected", "审核不通过"),
            ("open", "待申请兑付"),
            ("cancelled", "已取消"),
            ("", "全部"),
        ),
        default_tab="claimed",
        decisions={
            "approve": Decision(
                "/admin/settlements/{id}/approve", "reason?", "兑付申请已审核通过，待付款", (FINANCE,)
            ),
            "reject": Decision(
                "/admin/settlements/{id}/reject", "reason", "兑付申请已审核不通过", (FINANCE,)
            ),
            "pay": Decision("/admin/settlements/{id}/pay", "payout", "已登记付款，兑付完成", (FINANCE,)),
        },
    ),
    "refunds": Queue(
        "退款管理",
        "/admin/refunds",
        "admin/refunds.html",
        (FINANCE,),
        tab_param="state",
        tabs=(("due", "待退款"), ("refunded", "已退款"), ("", "全部")),
        default_tab="due",
        decisions={
            "mark-refunded": Decision(
                "/admin/refunds/{id}/mark-refunded", "refund", "已登记退款", (FINANCE,)
            ),
        },
    ),
    "contracts": Queue(
        "合同管理",
        "/admin/contracts",
        "admin/contracts.html",
        STAFF,
        tab_param="state",
        tabs=(("", "全部"), *labels.CONTRACT_STATES.items()),
        decisions={
            "terminate": Decision(
                "/admin/contracts/{id}/terminate", "reason", "已提出终止合同，待支付服务确认退款与额度", ()
            ),
        },
    ),
    "messages": Queue(
        "留言管理",
        "/admin/messages",
        "admin/messages.html",
        STAFF,
        tabs=(("open", "待回复"), ("replied", "已回复"), ("closed", "已关闭"), ("", "全部")),
        default_tab="open",
        decisions={
            "reply": Decision("/admin/messages/{id}/reply", "reply", "已回复留言", STAFF),
            "close": Decision("/admin/messages/{id}/close", "none", "已关闭留言", STAFF),
        },
    ),
    "vouchers": Queue(
        "服务券一览",
        "/admin/vouchers",
        "admin/vouchers.html",
        STAFF,
        tab_param=None,
        filters=("voucher_type",),
    ),
    "organizations": Queue(
        "企业与服务机构",
        "/admin/organizations",
        "admin/organizations.html",
        (),
        tab_param=None,
        filters=("q", "capability", "suspended"),
        decisions={
            "suspend": Decision("/admin/organizations/{id}/suspend", "reason", "已暂停该单位", ()),
            "restore": Decision("/admin/organizations/{id}/restore", "reason", "已恢复该单位", ()),
        },
    ),
    "staff": Queue(
        "平台人员管理",
        "/admin/staff",
        "admin/staff.html",
        (),
        tab_param=None,
        filters=("active",),
        decisions={
            "role": Decision("/admin/staff/{id}", "role", "已修改角色", (), method="PUT"),
            "deactivate": Decision("/admin/staff/{id}", "inactive", "已停用该账号", (), method="PUT"),
            "activate": Decision("/admin/staff/{id}", "active", "已启用该账号", (), method="PUT"),
        },
    ),
}


async def queue_page(
    portal: Portal,
    key: str,
    query: Mapping[str, str],
    *,
    problem: ApiError | None = None,
    form: dict[str, str] | None = None,
    failed: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    queue = QUEUES[key]
    require(portal, queue.roles)
    tab = query.get(queue.tab_param, queue.default_tab or "") if queue.tab_param else ""
    filters = {f: query.get(f, "") for f in queue.filters}
    params: dict[str, Any] = {**filters, "page": page_number(query.get("page")), "page_size": PAGE_SIZE}
    if queue.tab_param:
        params[queue.tab_param] = tab
    page = await portal.api.get(queue.api, **params)
    kept = {**filters, **({queue.tab_param: tab} if queue.tab_param else {})}
    return render(
        portal,
        queue.template,
        status_code,
        menu_key=key,
        queue=queue,
        key=key,
        page=page,
        tab=tab,
        filters=filters,
        tab_base=link(f"/admin/{key}", filters),
        page_base=link(f"/admin/{key}", kept),
        here=link(f"/admin/{key}", {**kept, "page": params["page"] if params["page"] > 1 else ""}),
        problem=problem,
        form=form or {},
        failed=failed,
        can=lambda action: allowed(portal, queue.decisions[action].roles),
        staff_roles=STAFF_ROLES,
        **extra,
    )


async def decision_body(portal: Portal, kind: str) -> dict[str, Any] | None:
    form = await portal.values()
    reason = (form.get("reason") or "").strip()
    if kind == "none":
        return None
    if kind == "reason":
        return {"reason": reason}
    if kind == "reason?":
        return {"reason": reason} if reason else {}
    if kind == "quota":
        body: dict[str, Any] = {"reason": reason} if reason else {}
        approved = await portal.fen("approved_fen", required=False, label="批准额度")
        if approved is not None:
            body["approved_fen"] = approved
        return body
    if kind == "payout":
        return {"payout_reference": (form.get("payout_reference") or "").strip()}
    if kind == "refund":
        return {"refund_reference": (form.get("refund_reference") or "").strip()}
    if kind == "reply":
        return {"reply": (form.get("reply") or "").strip()}
    if kind == "role":
        return {"role": form.get("role") or ""}
    if kind in ("active", "inactive"):
        return {"active": kind == "active"}
    raise ValueError(kind)


# --- the dashboard -----------------------------------------------------------------------------

# (title, list path for the count, its params, the console's link, roles)
COUNTERS: tuple[tuple[str, str, dict[str, str], str, tuple[str, ...]], ...] = (
    ("配额申请待审核", "/admin/quota-applications", {"status": "pending_review"},
     "/admin/quota-applications?status=pending_review", (REVIEWER,)),
    ("其中需人工核实（未在划型名单）", "/admin/quota-applications", {"status": "pending_review", "flagged": "true"},
     "/admin/quota-applications?status=pending_review&flagged=true", (REVIEWER,)),
    ("服务机构入驻待审核", "/admin/provider-applications", {"status": "pending_review"},
     "/admin/provider-applications?status=pending_review", (REVIEWER,)),
    ("服务产品待审核", "/admin/products", {"status": "pending_review"},
     "/admin/products?status=pending_review", (REVIEWER,)),
    ("需求待处理", "/admin/demands", {"status": "pending"}, "/admin/demands?status=pending", (REVIEWER,)),
    ("需求待审核", "/admin/demands", {"status": "under_review"}, "/admin/demands?status=under_review", (REVIEWER,)),
    ("转账待核实", "/admin/remittances", {"state": "pending"}, "/admin/remittances?state=pending", (FINANCE,)),
    ("兑付待审核", "/admin/settlements", {"state": "claimed"}, "/admin/settlements?state=claimed", (FINANCE,)),
    ("兑付待付款", "/admin/settlements", {"state": "approved"}, "/admin/settlements?state=approved", (FINANCE,)),
    ("待退款", "/admin/refunds", {"state": "due"}, "/admin/refunds?state=due", (FINANCE,)),
    ("留言待回复", "/admin/messages", {"status": "open"}, "/admin/messages?status=open", STAFF),
)  # fmt: skip


@router.get("/admin", response_class=HTMLResponse)
async def dashboard(portal: StaffPortal) -> HTMLResponse:
    mine = [c for c in COUNTERS if allowed(portal, c[4])]

    async def count(path: str, params: dict[str, str]) -> int | None:
        answer = await quietly(portal, path, None, **params, page_size=1)
        return None if answer is None else int(answer.get("total") or 0)

    totals = await asyncio.gather(*(count(c[1], c[2]) for c in mine))
    cards = [{"title": c[0], "count": n, "href": c[3]} for c, n in zip(mine, totals, strict=True)]
    return render(portal, "admin/dashboard.html", menu_key="dashboard", cards=cards)


# --- the queues' routes (the generic decision route is registered last) -------------------------


def _queue_route(key: str) -> None:
    async def listing(portal: StaffPortal) -> HTMLResponse:
        return await queue_page(portal, key, dict(portal.request.query_params))

    listing.__name__ = f"admin_{key.replace('-', '_')}"
    router.add_api_route(f"/admin/{key}", listing, methods=["GET"], response_class=HTMLResponse)


for _key in QUEUES:
    _queue_route(_key)


# --- 企业划型名单导入 --------------------------------------------------------------------------------


@router.get("/admin/designations", response_class=HTMLResponse)
async def designations_page(portal: StaffPortal) -> HTMLResponse:
    require(portal, (REVIEWER,))
    campaign = await quietly(portal, "/campaigns/current", {})
    return render(portal, "admin/designations.html", menu_key="designations", campaign=campaign, report=None)


@router.post("/admin/designations", response_class=HTMLResponse)
async def designations_import(portal: StaffPortal) -> HTMLResponse:
    require(portal, (REVIEWER,))
    form = await portal.form()
    upload = form.get("file")
    campaign = await quietly(portal, "/campaigns/current", {})
    if not isinstance(upload, UploadFile) or not upload.filename:
        problem = ApiError(422, "file_required", "请选择名单文件（CSV 或 XLSX）", {"file": "请选择名单文件"})
        return render(
            portal,
            "admin/designations.html",
            422,
            menu_key="designations",
            campaign=campaign,
            problem=problem,
        )
    content = await upload.read()
    try:
        report = await portal.api.request(
            "POST",
            "/admin/designations/import",
            files={"file": (upload.filename, content, upload.content_type or "application/octet-stream")},
        )
    except ApiError as problem:
        return render(
            portal,
            "admin/designations.html",
            problem.status,
            menu_key="designations",
            campaign=campaign,
            problem=problem,
        )
    return render(
        portal,
        "admin/designations.html",
        menu_key="designations",
        campaign=campaign,
        report=report,
        filename=upload.filename,
    )


# --- 年度活动设置 -----------------------------------------------------------------------------------

VOUCHER_TYPE_KEYS = tuple(labels.VOUCHER_TYPES)


def _percent(bp: Any) -> str:
    if bp in (None, ""):
        return ""
    value = Decimal(int(bp)) / 100
    return f"{value.normalize():f}"


def _bp(form: Mapping[str, str], name: str, errors: dict[str, str], required: bool = True) -> int | None:
    raw = (form.get(name) or "").strip().rstrip("%")
    if not raw:
        if required:
            errors[name] = "请填写比例"
        return None
    try:
        value = Decimal(raw) * 100
    except InvalidOperation:
        errors[name] = "比例应为百分数，例如 50"
        return None
    if value != value.to_integral_value():
        errors[name] = "比例最多两位小数"
        return None
    return int(value)


def campaign_form(campaign: Mapping[str, Any] | None) -> dict[str, str]:
    """The campaign as the edit form shows it (yuan, percent, one designation a line)."""
    if not campaign:
        return {"year": str(date.today().year)}
    form: dict[str, str] = {
        "year": str(campaign.get("year") or ""),
        "title": campaign.get("title") or "",
        "pending_budget_fen": yuan_input(campaign.get("pending_budget_fen")),
    }
    for i, tier in enumerate(campaign.get("tiers") or []):
        form[f"tier{i}.label"] = tier.get("label") or ""
        form[f"tier{i}.amount_fen"] = yuan_input(tier.get("amount_fen"))
        form[f"tier{i}.designations"] = "\n".join(tier.get("designations") or [])
    for t in campaign.get("voucher_types") or []:
        vt = t["voucher_type"]
        form[f"{vt}.enabled"] = "on"
        form[f"{vt}.policy_text"] = t.get("policy_text") or ""
        form[f"{vt}.valid_from"] = str(t.get("valid_from") or "")
        form[f"{vt}.valid_to"] = str(t.get("valid_to") or "")
        form[f"{vt}.ratio_bp"] = _percent(t.get("ratio_bp"))
        form[f"{vt}.yearly_cap_fen"] = yuan_input(t.get("yearly_cap_fen"))
        form[f"{vt}.basis_share_bp"] = _percent(t.get("basis_share_bp"))
        form[f"{vt}.support_years"] = str(t.get("support_years") or "")
    return form


TIER_ROWS = 6


async def campaign_body(portal: Portal, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    errors: dict[str, str] = {}

    async def fen(name: str, label: str, required: bool = True) -> int | None:
        try:
            return await portal.fen(name, required=required, label=label)
        except FormInvalid as exc:
            errors.update(exc.errors)
            return None

    try:
        year = int(form.get("year") or "")
    except ValueError:
        errors["year"] = "请填写年度，例如 2025"
        year = 0
    tiers = []
    for i in range(TIER_ROWS):
        label = (form.get(f"tier{i}.label") or "").strip()
        if not label:
            continue
        designations = [
            d.strip() for d in (form.get(f"tier{i}.designations") or "").splitlines() if d.strip()
        ]
        tiers.append(
            {
                "label": label,
                "amount_fen": await fen(f"tier{i}.amount_fen", "档位额度"),
                "designations": designations,
            }
        )
    types = []
    for vt in VOUCHER_TYPE_KEYS:
        if not form.get(f"{vt}.enabled"):
            continue
        item: dict[str, Any] = {
            "voucher_type": vt,
            "policy_text": form.get(f"{vt}.policy_text") or "",
            "valid_from": form.get(f"{vt}.valid_from") or None,
            "valid_to": form.get(f"{vt}.valid_to") or None,
            "ratio_bp": _bp(form, f"{vt}.ratio_bp", errors),
            "yearly_cap_fen": await fen(f"{vt}.yearly_cap_fen", "年度上限", required=False) or 0,
        }
        share = _bp(form, f"{vt}.basis_share_bp", errors, required=False)
        if share is not None:
            item["basis_share_bp"] = share
        years = (form.get(f"{vt}.support_years") or "").strip()
        if years:
            item["support_years"] = int(years) if years.isdigit() else years
        types.append(item)
    body = {
        "title": form.get("title") or "",
        "pending_budget_fen": await fen("pending_budget_fen", "待预算审批金额", required=False) or 0,
        "tiers": tiers,
        "types": types,
    }
    if errors:
        raise FormInvalid(errors)
    return year, body


@router.get("/admin/campaigns", response_class=HTMLResponse)
async def campaign_page(portal: StaffPortal) -> HTMLResponse:
    require(portal, ())
    campaign = await quietly(portal, "/campaigns/current", None)
    return render(
        portal,
        "admin/campaigns.html",
        menu_key="campaigns",
        campaign=campaign,
        form=campaign_form(campaign),
        tier_rows=TIER_ROWS,
    )


@router.post("/admin/campaigns", response_class=HTMLResponse)
async def campaign_save(portal: StaffPortal) -> Response:
    require(portal, ())
    form = await portal.values()
    campaign = await quietly(portal, "/campaigns/current", None)
    try:
        year, body = await campaign_body(portal, form)
        saved = await portal.api.put(f"/admin/campaigns/{year}", body)
    except (ApiError, FormInvalid) as exc:
        problem = form_problem(exc.errors) if isinstance(exc, FormInvalid) else exc
        return render(
            portal,
            "admin/campaigns.html",
            problem.status,
            menu_key="campaigns",
            campaign=campaign,
            form=form,
            tier_rows=TIER_ROWS,
            problem=problem,
        )
    return portal.redirect("/admin/campaigns", f"已保存{saved.get('year', year)}年度活动设置")


# --- 平台人员: creation (the list and its changes are a queue) ----------------------------------------


@router.post("/admin/staff", response_class=HTMLResponse)
async def staff_create(portal: StaffPortal) -> Response:
    require(portal, ())
    form = await portal.values()
    body: dict[str, Any] = {k: (form.get(k) or "").strip() for k in ("phone", "name", "role")}
    if form.get("password"):
        body["password"] = form["password"]
    try:
        made = await portal.api.post("/admin/staff", body)
    except ApiError as problem:
        form.pop("password", None)
        return await queue_page(
            portal,
            "staff",
            dict(portal.request.query_params),
            problem=problem,
            form=form,
            status_code=problem.status,
        )
    role = labels.ROLES.get(made.get("role", ""), made.get("role", ""))
    return portal.redirect("/admin/staff", f"已新增平台人员：{made.get('name')}（{role}）")


# --- 政策通知管理 -----------------------------------------------------------------------------------


@router.get("/admin/notices", response_class=HTMLResponse)
async def notices_page(portal: StaffPortal, page: int = 1) -> HTMLResponse:
    require(portal, ())
    notices = await portal.api.get("/notices", page=page_number(page), page_size=PAGE_SIZE)
    return render(portal, "admin/notices.html", menu_key="notices", page=notices, kinds=dict(NOTICE_KINDS))


@router.get("/admin/notices/new", response_class=HTMLResponse)
async def notice_new(portal: StaffPortal) -> HTMLResponse:
    require(portal, ())
    return render(portal, "admin/notice_form.html", menu_key="notices", notice=None, kinds=NOTICE_KINDS)


@router.get("/admin/notices/{notice_id}/edit", response_class=HTMLResponse)
async def notice_edit(portal: StaffPortal, notice_id: str) -> HTMLResponse:
    require(portal, ())
    notice = await portal.api.get(f"/notices/{notice_id}")
    form = {k: notice.get(k) or "" for k in ("title", "kind", "body_html")}
    return render(
        portal, "admin/notice_form.html", menu_key="notices", notice=notice, kinds=NOTICE_KINDS, form=form
    )


async def _notice_body(portal: Portal, current: Mapping[str, Any] | None) -> dict[str, Any]:
    form = await portal.values()
    ids = await portal.upload_files("attachment_file_id")
    attachment = ids[0] if ids else (current or {}).get("attachment_file_id")
    if form.get("remove_attachment"):
        attachment = None
    return {
        "title": (form.get("title") or "").strip(),
        "kind": form.get("kind") or "",
        "body_html": form.get("body_html") or "",
        "attachment_file_id": attachment,
    }


async def _save_notice(portal: Portal, notice: Mapping[str, Any] | None) -> Response:
    """Publishes a new notice (``notice`` None) or changes one; the form again with the API's
    problem when it refuses."""
    require(portal, ())
    await portal.form()
    body = await _notice_body(portal, notice)
    try:
        if notice is None:
            saved = await portal.api.post("/admin/notices", body)
        else:
            saved = await portal.api.put(f"/admin/notices/{notice['id']}", body)
    except ApiError as problem:
        return render(
            portal,
            "admin/notice_form.html",
            problem.status,
            menu_key="notices",
            notice=notice,
            kinds=NOTICE_KINDS,
            form=await portal.values(),
            problem=problem,
        )
    done = "已发布" if notice is None else "已修改"
    return portal.redirect("/admin/notices", f"{done}：{saved.get('title')}")


@router.post("/admin/notices/new", response_class=HTMLResponse)
async def notice_create(portal: StaffPortal) -> Response:
    return await _save_notice(portal, None)


@router.post("/admin/notices/{notice_id}/edit", response_class=HTMLResponse)
async def notice_update(portal: StaffPortal, notice_id: str) -> Response:
    require(portal, ())
    return await _save_notice(portal, await portal.api.get(f"/notices/{notice_id}"))


@router.post("/admin/notices/{notice_id}/delete", response_class=HTMLResponse)
async def notice_delete(portal: StaffPortal, notice_id: str) -> Response:
    require(portal, ())
    await portal.form()
    try:
        await portal.api.delete(f"/admin/notices/{notice_id}")
    except ApiError as problem:
        return portal.redirect("/admin/notices", f"未能撤下：{problem.detail}", "error")
    return portal.redirect("/admin/notices", "已撤下该公告")


# --- 服务机构补贴上限 -------------------------------------------------------------------------------


async def _provider_name(portal: Portal, org_id: str) -> str:
    provider = await quietly(portal, f"/providers/{org_id}", {}) or {}
    return str(provider.get("name") or (provider.get("provider") or {}).get("name") or "")


@router.get("/admin/providers/{org_id}/subsidy-cap", response_class=HTMLResponse)
async def cap_page(portal: StaffPortal, org_id: str) -> HTMLResponse:
    require(portal, ())
    name = await _provider_name(portal, org_id)
    return render(
        portal,
        "admin/subsidy_cap.html",
        menu_key="organizations",
        org_id=org_id,
        name=name,
        this_year=date.today().year,
    )


@router.post("/admin/providers/{org_id}/subsidy-cap", response_class=HTMLResponse)
async def cap_save(portal: StaffPortal, org_id: str) -> Response:
    require(portal, ())
    form = await portal.values()
    name = await _provider_name(portal, org_id)
    try:
        body: dict[str, Any] = {
            "cap_fen": await portal.fen("cap_fen", label="年度补贴上限"),
            "reason": (form.get("reason") or "").strip(),
        }
        if (form.get("year") or "").strip():
            body["year"] = form["year"].strip()
        cap = await portal.api.put(f"/admin/providers/{org_id}/subsidy-cap", body)
    except (ApiError, FormInvalid) as exc:
        problem = form_problem(exc.errors) if isinstance(exc, FormInvalid) else exc
        return render(
            portal,
            "admin/subsidy_cap.html",
            problem.status,
            menu_key="organizations",
            org_id=org_id,
            name=name,
            this_year=date.today().year,
            form=form,
            problem=problem,
        )
    message = (
        f"已将{name or '该服务机构'} {cap.get('year')} 年度补贴上限调整为 {yuan(cap.get('cap_fen'))} 元"
        f"（已预占 {yuan(cap.get('reserved_fen'))} 元，已使用 {yuan(cap.get('used_fen'))} 元）"
    )
    return portal.redirect(f"/admin/providers/{org_id}/subsidy-cap", message)


# --- 操作日志 ---------------------------------------------------------------------------------------


def _since(raw: str) -> str | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if len(raw) == 10:  # a day typed in a date field: from Beijing midnight
        return f"{raw}T00:00:00+08:00"
    return raw


def _detail_text(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    shown = []
    for key, value in (details or {}).items():
        if key not in DETAIL_LABELS or value in (None, "", [], {}):
            continue
        if key.endswith("_fen"):
            text = f"{yuan(value)} 元"
        elif key == "voucher_type":
            text = labels.VOUCHER_TYPES.get(value, value)
        elif key == "role":
            text = labels.ROLES.get(value, value)
        elif key == "flagged":
            text = "是" if value else "否"
        elif key == "changes" and isinstance(value, dict):
            text = "；".join(
                f"{k}: {v[0]} → {v[1]}" for k, v in value.items() if isinstance(v, list) and len(v) == 2
            )
        else:
            text = str(value)
        shown.append((DETAIL_LABELS[key], text))
    return shown


@router.get("/admin/audit-log", response_class=HTMLResponse)
async def audit_log(
    portal: StaffPortal,
    service: str = "",
    actor: str = "",
    action: str = "",
    since: str = "",
    page: int = 1,
) -> HTMLResponse:
    filters = {"service": service, "actor": actor.strip(), "action": action.strip(), "since": since}
    problem = None
    try:
        log = await portal.api.get(
            "/admin/audit-log",
            service=service,
            actor=filters["actor"],
            action=filters["action"],
            since=_since(since),
            page=page_number(page),
            page_size=PAGE_SIZE,
        )
    except ApiError as exc:
        problem = exc
        log = {"items": [], "total": 0, "page": 1, "page_size": PAGE_SIZE, "stale": []}
    # Staff names for the actors (the list is administrators'; others see roles).
    names: dict[str, str] = {}
    if allowed(portal, ()):
        staff = await quietly(portal, "/admin/staff", {}, page_size=100) or {}
        names = {s["id"]: s["name"] for s in staff.get("items") or []}
    me = portal.user
    if me.get("id"):
        names.setdefault(str(me["id"]), str(me.get("name") or "我"))
    for item in log.get("items") or []:
        item["actor_name"] = names.get(item.get("actor_id") or "", "")
        item["action_label"] = ACTIONS.get(item.get("action") or "", item.get("action") or "")
        item["target_label"] = TARGETS.get(item.get("target_type") or "", item.get("target_type") or "")
        item["shown"] = _detail_text(item.get("details") or {})
    stale = [dict(SERVICES).get(s, s) for s in log.get("stale") or []]
    return render(
        portal,
        "admin/audit_log.html",
        problem.status if problem else 200,
        menu_key="audit-log",
        log=log,
        filters=filters,
        stale=stale,
        services=SERVICES,
        actions=ACTIONS,
        staff_names=sorted(names.items(), key=lambda kv: kv[1]),
        page_base=link("/admin/audit-log", filters),
        problem=problem,
    )


# --- every queue's decisions (last: its path would shadow the routes above) -----------------------


@router.post("/admin/{key}/{item_id}/{action}", response_class=HTMLResponse)
async def decide(portal: StaffPortal, key: str, item_id: str, action: str) -> Response:
    queue = QUEUES.get(key)
    decision = queue.decisions.get(action) if queue else None
    if queue is None or decision is None:
        raise HTTPException(404)
    require(portal, decision.roles)
    await portal.form()
    default = f"/admin/{key}"
    back = portal.back(default)
    if not back.startswith(default):
        back = default
    try:
        body = await decision_body(portal, decision.body)
        await portal.api.request(
            decision.method, decision.path.format(id=item_id), json=body if body is not None else {}
        )
    except (ApiError, FormInvalid) as exc:
        problem = form_problem(exc.errors) if isinstance(exc, FormInvalid) else exc
        query = dict(parse_qsl(urlsplit(back).query))
        return await queue_page(
            portal,
            key,
            query,
            problem=problem,
            form={**(await portal.values()), "action": action},
            failed=item_id,
            status_code=problem.status,
        )
    return portal.redirect(back, decision.done)
