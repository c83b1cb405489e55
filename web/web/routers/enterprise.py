"""个人中心 for an enterprise: 基本信息, 企业信息认证 (three steps), 支付认证, 安全设置,
服务券配额申请 and each voucher's ledger, 我的收藏, 我的需求管理, 我要留言, 消息通知.

(我购买的服务 and the order pages are the deals router's.) Every page reads the API; every
form posts here first (CSRF), then to the API, then redirects with a message or shows the
API's problem on the form.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from web import labels
from web.client import API_PREFIX, ApiError
from web.deps import EnterprisePortal, FormInvalid, Portal, SignedIn
from web.pages import form_problem, new_captcha, page_number

router = APIRouter()

SPECIAL_TYPES = ("financing_guarantee", "equipment_leasing")
VOUCHER_TYPES = ("general", *SPECIAL_TYPES)
# 申领额度's basis, per special type (the policy's "实际担保费" / "租赁利息").
BASIS_LABELS = {"financing_guarantee": "实际担保费", "equipment_leasing": "设备租赁利息"}
DEMAND_TABS: tuple[tuple[str, str], ...] = (
    ("", "全部"),
    ("pending", "待处理"),
    ("published", "已发布"),
    ("under_review", "待审核"),
    ("returned", "退回修改"),
    ("rejected", "审核不通过"),
    ("closed", "关闭需求"),
)


async def _optional(portal: Portal, path: str, **params: Any) -> tuple[Any, ApiError | None]:
    """The API's answer, or the problem to show on the page in its place."""
    try:
        return await portal.api.get(path, **params), None
    except ApiError as problem:
        return None, problem


# --- 基本信息 ---------------------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse)
async def center(portal: EnterprisePortal) -> HTMLResponse:
    # Fresh (certified, capabilities, suspended as they are now), with the details and the
    # vouchers asked at the same time; an uncertified organisation's vouchers are a 403.
    await portal.api.token()  # renewed once here, not by three requests racing with one refresh token
    me, (organization, _), (vouchers, _) = await asyncio.gather(
        portal.api.load_me(), _optional(portal, "/me/organization"), _optional(portal, "/me/vouchers")
    )
    return portal.render(
        "enterprise/me.html",
        me=me,
        detail=organization or me.get("organization") or {},
        vouchers=(vouchers or {}).get("items"),
    )


# --- 企业信息认证: 企业信息 → 指定经办人 → 认证成功 ---------------------------------------------------


async def _certification_page(
    portal: Portal, step: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    me = await portal.api.load_me()
    org = me.get("organization") or {}
    detail = None
    if org.get("certified"):
        detail, _ = await _optional(portal, "/me/organization")
    elif step != "info":
        step = "info"  # steps 2 and 3 come after step 1
    captcha = await new_captcha(portal) if step == "info" and not org.get("certified") else None
    return portal.render(
        "enterprise/certification.html",
        status_code,
        step=step,
        me=me,
        org=org,
        detail=detail or org,
        captcha=captcha,
        **context,
    )


@router.get("/me/certification", response_class=HTMLResponse)
async def certification(portal: SignedIn, step: str = "info") -> HTMLResponse:
    step = step if step in ("info", "agent", "done") else "info"
    return await _certification_page(portal, step)


@router.post("/me/certification", response_class=HTMLResponse)
async def certify(portal: SignedIn) -> Response:
    form = await portal.values()
    if form.get("send_sms"):  # 获取验证码 without JavaScript: send, and show the form again
        kept = {k: v for k, v in form.items() if k not in ("send_sms", "captcha_answer", "sms_code")}
        try:
            await portal.api.post(
                "/sms-codes",
                {
                    "phone": portal.user.get("phone", ""),
                    "purpose": "certify",
                    "captcha_id": form.get("captcha_id", ""),
                    "captcha_answer": form.get("captcha_answer", "").strip(),
                },
            )
        except ApiError as problem:
            return await _certification_page(portal, "info", problem.status, form=kept, problem=problem)
        return await _certification_page(portal, "info", form=kept, sms_message="验证码已发送，请查收短信")
    body = {
        "role": form.get("role", ""),
        "name": form.get("name", "").strip(),
        "uscc": form.get("uscc", "").strip(),
        "legal_rep_name": form.get("legal_rep_name", "").strip(),
        "legal_rep_id_type": form.get("legal_rep_id_type", ""),
        "legal_rep_id_number": form.get("legal_rep_id_number", "").strip(),
        "sms_code": form.get("sms_code", "").strip(),
        "agreed": form.get("agreed") in ("true", "on", "1"),
    }
    try:
        answer = await portal.api.post("/me/organization/certification", body)
    except ApiError as problem:
        return await _certification_page(portal, "info", problem.status, form=form, problem=problem)
    # The answer carries an access token with the new capability; the refresh token goes on.
    portal.session.sign_in(
        {
            "access_token": answer["access_token"],
            "refresh_token": portal.session.refresh_token,
            "expires_in": answer.get("expires_in", 900),
        }
    )
    await portal.api.load_me()
    return portal.redirect("/me/certification?step=agent", "企业信息认证成功，可以指定经办人")


@router.post("/me/certification/agent", response_class=HTMLResponse)
async def put_agent(portal: SignedIn, step: str = "") -> Response:
    form = await portal.values()
    body = {k: form.get(k, "").strip() for k in ("name", "id_number", "phone")}
    try:
        await portal.api.put("/me/organization/agent", body)
    except ApiError as problem:
        return await _certification_page(
            portal, "agent" if step == "agent" else "info", problem.status, form=form, problem=problem
        )
    if step == "agent":
        return portal.redirect("/me/certification?step=done", "经办人已指定")
    return portal.redirect("/me/certification", "经办人已指定，经办人可用其手机号登录办理业务")


@router.post("/me/certification/agent/delete")
async def delete_agent(portal: SignedIn) -> Response:
    await portal.form()
    await portal.api.delete("/me/organization/agent")
    return portal.redirect("/me/certification", "已取消经办人")


# --- 支付认证 ---------------------------------------------------------------------------------

BANK_FIELDS = ("account_name", "bank_name", "bank_region", "branch_name", "account_number")
# 开户所在地 and 开户支行 are keyword boxes: their suggestions come from identity's public
# reference lookups, offered in a <datalist> (filled by portal.js as one types, or by the
# page itself after 查询 when JavaScript is off).
LOOKUPS = ("bank_region", "branch_name")
HOME_PROVINCE = "450000"  # 广西壮族自治区: its cities are offered before anything is typed
OPTIONS_SHOWN = 50


async def _bank_options(
    portal: Portal, values: dict[str, str], field: str
) -> tuple[list[dict[str, str]], int]:
    """Suggestions for a keyword box (``bank_region`` or ``branch_name``) from what the form
    holds: ``[{value, label}]`` and how many match in all. Nothing typed in 开户所在地 offers
    the home province's cities; 开户支行 is narrowed to the region and bank already given
    (the region only when the data knows it)."""
    q = values.get(field, "").strip()
    if field == "bank_region":
        params: dict[str, Any] = {"q": q} if q else {"parent": HOME_PROVINCE}
        page, _ = await _optional(portal, "/reference/regions", page_size=OPTIONS_SHOWN, **params)
        rows = (page or {}).get("items") or []
        options = [{"value": r["full_name"], "label": r["full_name"]} for r in rows if r.get("selectable")]
        return options, 0 if page is None else page["total"] - (len(rows) - len(options))  # provinces aside
    params = {k: v for k, v in (("q", q), ("bank", values.get("bank_name", "").strip())) if v}
    path, region = "/reference/bank-branches", values.get("bank_region", "").strip()
    page, problem = await _optional(
        portal, path, page_size=OPTIONS_SHOWN, **params, **({"region": region} if region else {})
    )
    if problem is not None and region:  # a region the data does not know: all regions then
        page, _ = await _optional(portal, path, page_size=OPTIONS_SHOWN, **params)
    rows = (page or {}).get("items") or []
    options = [{"value": b["name"], "label": f"{b['name']}（{b['region_name']}）"} for b in rows]
    return options, 0 if page is None else page["total"]


async def _bank_page(
    portal: Portal, status_code: int = 200, *, looked_up: str | None = None, **context: Any
) -> HTMLResponse:
    account, problem = await _optional(portal, "/me/organization/bank-account")
    owner_only = problem is not None and problem.code == "owner_required"
    if problem is not None and problem.code not in ("bank_account_not_set", "owner_required"):
        raise problem
    form = context.get("form")
    values = form or {k: str((account or {}).get(k) or "") for k in BANK_FIELDS}
    options: dict[str, list[dict[str, str]]] = {}
    found: dict[str, int] = {}
    if not owner_only and (portal.organization or {}).get("certified"):
        for field in LOOKUPS:
            # On a posted form (查询, or a refusal) a box's text is its keyword; on the page
            # as saved, a box offers its neighbours (the home province's cities, the branches
            # of the account's bank in its region), not only the value it holds.
            keyed = values if form else {**values, field: ""}
            options[field], found[field] = await _bank_options(portal, keyed, field)
    banks: list[str] = []
    if options:
        page, _ = await _optional(portal, "/reference/banks", page_size=100)
        banks = [b["name"] for b in (page or {}).get("items") or []]
    return portal.render(
        "enterprise/bank_account.html",
        status_code,
        account=account,
        banks=banks,
        owner_only=owner_only,
        options=options,
        found=found,
        looked_up=looked_up,
        **context,
    )


@router.get("/me/bank-account", response_class=HTMLResponse)
async def bank_account(portal: EnterprisePortal) -> HTMLResponse:
    return await _bank_page(portal)


@router.get("/me/bank-account/options")
async def bank_account_options(
    portal: EnterprisePortal, field: str, q: str = "", bank_region: str = "", bank_name: str = ""
) -> JSONResponse:
    """portal.js's suggestions for a keyword box as one types: ``{options, total}``."""
    if field not in LOOKUPS:
        return JSONResponse({"options": [], "total": 0}, status_code=404)
    values = {"bank_region": bank_region, "bank_name": bank_name, field: q}
    options, total = await _bank_options(portal, {k: v[:100] for k, v in values.items()}, field)
    return JSONResponse({"options": options, "total": total})


@router.post("/me/bank-account", response_class=HTMLResponse)
async def save_bank_account(portal: EnterprisePortal) -> Response:
    form = await portal.values()
    if form.get("lookup") in LOOKUPS:  # 查询: the same form again, with the matches offered
        return await _bank_page(portal, form=form, looked_up=form["lookup"])
    body = {k: form.get(k, "").strip() for k in BANK_FIELDS}
    try:
        await portal.api.put("/me/organization/bank-account", body)
    except ApiError as problem:
        return await _bank_page(portal, problem.status, form=form, problem=problem)
    return portal.redirect("/me/bank-account", "银行卡信息已保存")


# --- 安全设置 ---------------------------------------------------------------------------------


@router.get("/me/security", response_class=HTMLResponse)
async def security(portal: SignedIn) -> HTMLResponse:
    return portal.render("enterprise/security.html")


@router.post("/me/security", response_class=HTMLResponse)
async def change_password(portal: SignedIn) -> Response:
    form = await portal.values()
    new = form.get("new_password", "")
    try:
        if new != form.get("confirm", ""):
            raise form_problem({"confirm": "两次输入的新密码不一致"})
        body: dict[str, Any] = {"new_password": new}
        if form.get("old_password"):
            body["old_password"] = form["old_password"]
        await portal.api.put("/me/password", body)
    except ApiError as problem:
        return portal.render("enterprise/security.html", problem.status, problem=problem)
    return portal.redirect("/me/security", "密码已修改，其他设备上的登录已退出")


# --- 服务券配额申请 and the ledger ---------------------------------------------------------------


async def _vouchers_page(
    portal: Portal, apply: str | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    answer, problem = await _optional(portal, "/me/vouchers")
    campaign, _ = await _optional(portal, "/campaigns/current")
    kinds = {t["voucher_type"]: t for t in (campaign or {}).get("voucher_types") or []}
    return portal.render(
        "enterprise/vouchers.html",
        status_code,
        vouchers=(answer or {}).get("items") or [],
        year=(answer or campaign or {}).get("year"),
        campaign=campaign,
        kinds=kinds,
        apply=apply if apply in VOUCHER_TYPES else None,
        basis_labels=BASIS_LABELS,
        page_problem=problem,
        **context,
    )


@router.get("/me/vouchers", response_class=HTMLResponse)
async def vouchers(portal: EnterprisePortal, apply: str | None = None) -> HTMLResponse:
    return await _vouchers_page(portal, apply)


@router.post("/me/vouchers", response_class=HTMLResponse)
async def apply_quota(portal: EnterprisePortal) -> Response:
    form = await portal.values()
    voucher_type = form.get("voucher_type", "")
    body: dict[str, Any] = {"voucher_type": voucher_type}
    try:
        if voucher_type in SPECIAL_TYPES:
            try:
                body["requested_fen"] = await portal.fen("requested_fen", label="申领额度")
                body["basis_fen"] = await portal.fen("basis_fen", label=BASIS_LABELS[voucher_type])
            except FormInvalid as bad:
                raise form_problem(bad.errors) from None
            body["proof_file_ids"] = await portal.upload_files("proof_file_ids")
            if not body["proof_file_ids"]:
                raise form_problem({"proof_file_ids": "请上传合同凭证（PDF、JPG 或 PNG）"})
        await portal.api.post("/me/quota-applications", body)
    except ApiError as problem:
        return await _vouchers_page(portal, voucher_type, problem.status, form=form, problem=problem)
    name = labels.VOUCHER_TYPES.get(voucher_type, "服务券")
    return portal.redirect("/me/vouchers", f"配额申请成功：{name}申请已提交，等待平台审核")


@router.get("/me/vouchers/{voucher_id}", response_class=HTMLResponse)
async def voucher_ledger(portal: EnterprisePortal, voucher_id: str, page: str | None = None) -> HTMLResponse:
    movements = await portal.api.get(
        f"/me/vouchers/{quote(voucher_id, safe='')}/movements", page=page_number(page)
    )
    answer, _ = await _optional(portal, "/me/vouchers")
    card = next((v for v in (answer or {}).get("items") or [] if v.get("voucher_id") == voucher_id), None)
    return portal.render("enterprise/voucher.html", movements=movements, card=card)


# --- 我的收藏 ---------------------------------------------------------------------------------


@router.get("/me/favorites", response_class=HTMLResponse)
async def favorites(portal: SignedIn, page: str | None = None) -> HTMLResponse:
    answer = await portal.api.get("/me/favorites", page=page_number(page))
    return portal.render("enterprise/favorites.html", page=answer)


@router.post("/me/favorites/{product_id}/delete")
async def remove_favorite(portal: SignedIn, product_id: str) -> Response:
    await portal.form()
    await portal.api.delete(f"/me/favorites/{quote(product_id, safe='')}")
    return portal.redirect(portal.back("/me/favorites"), "已取消收藏")


# --- 我的需求管理 ------------------------------------------------------------------------------


@router.get("/me/demands", response_class=HTMLResponse)
async def demands(portal: EnterprisePortal, status: str = "", page: str | None = None) -> HTMLResponse:
    status = status if status in labels.DEMAND_STATES else ""
    answer, problem = await _optional(portal, "/me/demands", status=status or None, page=page_number(page))
    return portal.render(
        "enterprise/demands.html", page=answer, status=status, tabs=DEMAND_TABS, page_problem=problem
    )


def _demand_body(form: dict[str, str], budget_fen: int | None) -> dict[str, Any]:
    mode = form.get("budget_mode", "quote")
    return {
        "name": form.get("name", "").strip(),
        "category": form.get("category", ""),
        "budget_mode": mode,
        "budget_fen": budget_fen if mode == "fixed" else None,
        "content": form.get("content", "").strip(),
    }


async def _demand_budget(portal: Portal, form: dict[str, str]) -> int | None:
    if form.get("budget_mode") != "fixed":
        return None
    try:
        return await portal.fen("budget_fen", label="预算金额")
    except FormInvalid as bad:
        raise form_problem(bad.errors) from None


def _demand_form(
    portal: Portal, demand: dict[str, Any] | None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    return portal.render(
        "enterprise/demand_form.html", status_code, demand=demand, categories=labels.CATEGORIES, **ctx
    )


@router.get("/me/demands/new", response_class=HTMLResponse)
async def new_demand(portal: EnterprisePortal) -> HTMLResponse:
    return _demand_form(portal, None)


@router.post("/me/demands/new", response_class=HTMLResponse)
async def publish_demand(portal: EnterprisePortal) -> Response:
    form = await portal.values()
    try:
        created = await portal.api.post("/me/demands", _demand_body(form, await _demand_budget(portal, form)))
    except ApiError as problem:
        return _demand_form(portal, None, problem.status, form=form, problem=problem)
    return portal.redirect(
        f"/me/demands/{created['id']}", "需求已提交，发布状态为“待处理”，平台审核通过后将在“企业需求”发布"
    )


@router.get("/me/demands/{demand_id}", response_class=HTMLResponse)
async def demand(portal: EnterprisePortal, demand_id: str, page: str | None = None) -> HTMLResponse:
    path = f"/me/demands/{quote(demand_id, safe='')}"
    found = await portal.api.get(path)
    responses, _ = await _optional(portal, f"{path}/responses", page=page_number(page))
    return portal.render(
        "enterprise/demand.html",
        demand=found,
        responses=(responses or {}).get("items", []),
        responses_page=responses,
    )


@router.get("/me/demands/{demand_id}/edit", response_class=HTMLResponse)
async def edit_demand(portal: EnterprisePortal, demand_id: str) -> HTMLResponse:
    found = await portal.api.get(f"/me/demands/{quote(demand_id, safe='')}")
    return _demand_form(portal, found)


@router.post("/me/demands/{demand_id}/edit", response_class=HTMLResponse)
async def save_demand(portal: EnterprisePortal, demand_id: str) -> Response:
    form = await portal.values()
    path = f"/me/demands/{quote(demand_id, safe='')}"
    try:
        await portal.api.put(path, _demand_body(form, await _demand_budget(portal, form)))
    except ApiError as problem:
        found = await portal.api.get(path)
        return _demand_form(portal, found, problem.status, form=form, problem=problem)
    return portal.redirect(f"/me/demands/{demand_id}", "需求已修改，等待平台审核")


@router.post("/me/demands/{demand_id}/close")
async def close_demand(portal: EnterprisePortal, demand_id: str) -> Response:
    await portal.form()
    await portal.api.post(f"/me/demands/{quote(demand_id, safe='')}/close")
    return portal.redirect(f"/me/demands/{demand_id}", "需求已关闭")


# --- 我要留言 ---------------------------------------------------------------------------------


async def _messages_page(portal: Portal, page: int = 1, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    answer = await portal.api.get("/me/messages", page=page)
    return portal.render("enterprise/messages.html", status_code, page=answer, **ctx)


@router.get("/me/messages", response_class=HTMLResponse)
async def messages(portal: SignedIn, page: str | None = None) -> HTMLResponse:
    return await _messages_page(portal, page_number(page))


@router.post("/me/messages", response_class=HTMLResponse)
async def leave_message(portal: SignedIn) -> Response:
    form = await portal.values()
    try:
        await portal.api.post("/me/messages", {"content": form.get("content", "").strip()})
    except ApiError as problem:
        return await _messages_page(portal, 1, problem.status, form=form, problem=problem)
    return portal.redirect("/me/messages", "留言已提交，平台回复后会通知您")


# --- 消息通知 ---------------------------------------------------------------------------------


def portal_link(link: str | None) -> str:
    """The portal page for a notification's link (the API path of its object)."""
    path = (link or "").strip()
    if path.startswith(API_PREFIX + "/"):
        path = path[len(API_PREFIX) :]
    if not path.startswith("/") or path.startswith("//"):
        return "/me/notifications"
    head, _, fragment = path.partition("#")
    parts = head.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "orders" and parts[2] == "contract":
        head = f"/orders/{parts[1]}"  # the order page shows its contract
    elif len(parts) == 4 and parts[:2] == ["me", "demands"] and parts[3] == "responses":
        head = f"/me/demands/{parts[2]}"  # the demand page lists its responses
    elif len(parts) == 3 and parts[:2] == ["me", "products"]:
        head = f"/me/products/{parts[2]}/edit"
    return head + (f"#{fragment}" if fragment else "")


@router.get("/me/notifications", response_class=HTMLResponse)
async def notifications(portal: SignedIn, page: str | None = None, unread: str = "") -> HTMLResponse:
    only_unread = unread in ("1", "true")
    answer = await portal.api.get(
        "/me/notifications", page=page_number(page), unread="true" if only_unread else None
    )
    for item in answer.get("items") or []:
        item["href"] = portal_link(item.get("link"))
    return portal.render("enterprise/notifications.html", page=answer, only_unread=only_unread)


@router.post("/me/notifications/read-all")
async def read_all(portal: SignedIn) -> Response:
    await portal.form()
    await portal.api.post("/me/notifications/read-all")
    return portal.redirect("/me/notifications", "全部通知已标为已读")


@router.post("/me/notifications/{notification_id}/read")
async def read_one(portal: SignedIn, notification_id: str) -> Response:
    form = await portal.values()
    read = await portal.api.post(f"/me/notifications/{quote(notification_id, safe='')}/read")
    if form.get("open"):
        return portal.redirect(portal_link((read or {}).get("link")))
    return portal.redirect("/me/notifications")
