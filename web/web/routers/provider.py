"""服务机构: 申请入驻平台, 服务机构信息, 服务产品管理 (create, edit, 提交审核, 下架 / 上架) and
服务券兑付 (the claims with their invoice, receipt and proof uploads).

The API decides everything: the pages show its states, its ``actions`` for each item and its
problems (with what to do next, labels.HINTS); the routers only pass forms on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web import labels
from web.client import ApiError
from web.deps import EnterprisePortal, FormInvalid, Portal, ProviderPortal
from web.formatting import yuan_input
from web.pages import form_problem

router = APIRouter()

PROFILE_FIELDS = ("profile", "contact_name", "contact_phone", "address", "working_hours")
PRODUCT_TEXT = ("name", "category", "description", "deliverables", "acceptance_criteria")
PRODUCT_MONEY = (
    ("market_price_fen", "市场指导价"),
    ("platform_price_fen", "平台销售价"),
    ("max_subsidy_fen", "最高补贴"),
)
PRODUCT_ACTIONS = {"submit": "提交审核", "unlist": "下架", "relist": "上架"}
SETTLEMENT_UPLOADS = (
    ("invoice_file_ids", "发票"),
    ("receipt_file_ids", "企业付款凭证"),
    ("proof_file_ids", "服务成果证明"),
)


# --- helpers ----------------------------------------------------------------------------------


def explained(problem: ApiError) -> str:
    """A problem as one flash line: the API's words and, when we know it, what to do next."""
    hint = labels.HINTS.get(problem.code)
    return f"{problem.detail.rstrip('。')}。{hint[0]}" if hint else problem.detail


async def uploads(portal: Portal, name: str) -> list[str]:
    """The files of field ``name`` stored (POST /files); a refused file is that field's problem."""
    try:
        return await portal.upload_files(name)
    except ApiError as problem:
        raise ApiError(problem.status, problem.code, problem.detail, {name: problem.detail}) from None


async def organization(portal: Portal) -> dict[str, Any]:
    """GET /me/organization (``bank_account_set`` for 支付认证); empty when it cannot be read."""
    try:
        detail: dict[str, Any] = await portal.api.get("/me/organization")
    except ApiError:
        return {}
    return detail


# --- 申请入驻平台 -----------------------------------------------------------------------------------


async def latest_application(portal: Portal) -> dict[str, Any] | None:
    """GET /me/provider-application: the latest application, None when there is none."""
    try:
        application: dict[str, Any] = await portal.api.get("/me/provider-application")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None
    return application


async def application_page(
    portal: Portal,
    *,
    form: dict[str, Any] | None = None,
    chosen: list[str] | None = None,
    problem: ApiError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    await portal.api.token()  # renewed once, before the calls run side by side
    me, application = await asyncio.gather(
        portal.api.load_me(),  # certified or approved a moment ago? the page and the menu say so
        latest_application(portal),
    )
    org = me.get("organization") or {}
    certified = bool(org.get("certified"))
    detail = await organization(portal) if certified else {}
    state = (application or {}).get("state")
    is_provider = portal.session.capable("provider")
    may_apply = certified and not is_provider and state in (None, "rejected")
    if form is None and application and state == "rejected":
        form = {k: application.get(k, "") for k in PROFILE_FIELDS}  # the rejected one, to correct
        chosen = list(application.get("categories") or [])
    return portal.render(
        "provider/application.html",
        status_code,
        application=application,
        certified=certified,
        bank_account_set=detail.get("bank_account_set"),
        is_provider=is_provider,
        may_apply=may_apply,
        categories=labels.CATEGORIES,
        chosen=chosen or [],
        form=form or {},
        problem=problem,
    )


@router.get("/me/provider-application", response_class=HTMLResponse)
async def provider_application(portal: EnterprisePortal) -> HTMLResponse:
    return await application_page(portal)


@router.post("/me/provider-application", response_class=HTMLResponse)
async def apply(portal: EnterprisePortal) -> Response:
    submitted = await portal.form()
    values = await portal.values()
    chosen = [str(c) for c in submitted.getlist("categories")]
    body: dict[str, Any] = {k: values.get(k, "") for k in PROFILE_FIELDS}
    body["categories"] = chosen
    try:
        body["proof_file_ids"] = await uploads(portal, "proof_file_ids")
        await portal.api.post("/me/provider-application", body)
    except ApiError as problem:
        return await application_page(
            portal, form=values, chosen=chosen, problem=problem, status_code=problem.status
        )
    return portal.redirect("/me/provider-application", "入驻申请已提交，请等待平台审核")


# --- 服务机构信息 -----------------------------------------------------------------------------------


async def profile_page(
    portal: Portal,
    *,
    form: dict[str, Any] | None = None,
    chosen: list[str] | None = None,
    problem: ApiError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    await portal.api.token()  # renewed once, before the calls run side by side
    profile, detail = await asyncio.gather(portal.api.get("/me/provider-profile"), organization(portal))
    return portal.render(
        "provider/profile.html",
        status_code,
        profile=profile,
        bank_account_set=detail.get("bank_account_set"),
        categories=labels.CATEGORIES,
        chosen=chosen if chosen is not None else list(profile.get("categories") or []),
        form=form if form is not None else {k: profile.get(k, "") for k in PROFILE_FIELDS},
        problem=problem,
    )


@router.get("/me/provider-profile", response_class=HTMLResponse)
async def provider_profile(portal: ProviderPortal) -> HTMLResponse:
    return await profile_page(portal)


@router.post("/me/provider-profile", response_class=HTMLResponse)
async def update_profile(portal: ProviderPortal) -> Response:
    submitted = await portal.form()
    values = await portal.values()
    chosen = [str(c) for c in submitted.getlist("categories")]
    body: dict[str, Any] = {k: values.get(k, "") for k in PROFILE_FIELDS}
    body["categories"] = chosen
    try:
        await portal.api.put("/me/provider-profile", body)
    except ApiError as problem:
        return await profile_page(
            portal, form=values, chosen=chosen, problem=problem, status_code=problem.status
        )
    return portal.redirect("/me/provider-profile", "服务机构信息已保存")


# --- 服务产品管理 -----------------------------------------------------------------------------------


@router.get("/me/products", response_class=HTMLResponse)
async def products(portal: ProviderPortal, status: str = "", page: int = 1) -> HTMLResponse:
    status = status if status in labels.PRODUCT_STATES else ""
    await portal.api.token()  # renewed once, before the calls run side by side
    listing, detail = await asyncio.gather(
        portal.api.get("/me/products", status=status or None, page=max(page, 1)), organization(portal)
    )
    counts = dict(listing.get("counts") or {})
    return portal.render(
        "provider/products.html",
        listing=listing,
        status=status,
        counts=counts,
        all_count=sum(counts.values()),
        tabs=[("", "全部"), *labels.PRODUCT_STATES.items()],
        bank_account_set=detail.get("bank_account_set"),
    )


def product_form_values(product: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {k: product.get(k, "") for k in PRODUCT_TEXT}
    values.update({k: yuan_input(product.get(k)) for k, _ in PRODUCT_MONEY})
    return values


async def product_body(portal: Portal) -> dict[str, Any]:
    """The form as the API's ProductIn (yuan typed -> fen); FormInvalid for a bad amount."""
    values = await portal.values()
    body: dict[str, Any] = {k: values.get(k, "") for k in PRODUCT_TEXT}
    errors: dict[str, str] = {}
    for name, label in PRODUCT_MONEY:
        try:
            body[name] = await portal.fen(name, label=label)
        except FormInvalid as exc:
            errors.update(exc.errors)
    if errors:
        raise FormInvalid(errors)
    return body


def product_page(
    portal: Portal,
    product: dict[str, Any] | None,
    *,
    form: dict[str, Any] | None = None,
    problem: ApiError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return portal.render(
        "provider/product_form.html",
        status_code,
        product=product,
        category_options=[(c, c) for c in labels.CATEGORIES],
        form=form if form is not None else (product_form_values(product) if product else {}),
        problem=problem,
    )


async def save_product(portal: Portal, product: dict[str, Any] | None) -> Response:
    values = await portal.values()
    try:
        body = await product_body(portal)
        if product is None:
            saved = await portal.api.post("/me/products", body)
        else:
            saved = await portal.api.put(f"/me/products/{product['id']}", body)
    except FormInvalid as exc:
        return product_page(
            portal,
            product,
            form=values,
            problem=form_problem(exc.errors, "请检查标出的内容"),
            status_code=422,
        )
    except ApiError as problem:
        return product_page(portal, product, form=values, problem=problem, status_code=problem.status)
    edit = f"/me/products/{saved['id']}/edit"
    if values.get("then") == "submit" and "submit" in (saved.get("actions") or []):
        try:
            await portal.api.post(f"/me/products/{saved['id']}/submit")
        except ApiError as problem:
            return portal.redirect(edit, f"已保存，但未能提交审核：{explained(problem)}", "error")
        return portal.redirect("/me/products?status=pending_review", "服务产品已保存并提交审核")
    message = f"服务产品已保存（{saved.get('status_label') or ''}）"
    if saved.get("review_flags"):
        message += "，请留意预审提示"
    return portal.redirect(edit, message)


@router.get("/me/products/new", response_class=HTMLResponse)
async def new_product(portal: ProviderPortal) -> HTMLResponse:
    return product_page(portal, None)


@router.post("/me/products", response_class=HTMLResponse)
async def create_product(portal: ProviderPortal) -> Response:
    return await save_product(portal, None)


@router.get("/me/products/{product_id}/edit", response_class=HTMLResponse)
async def edit_product(portal: ProviderPortal, product_id: str) -> HTMLResponse:
    return product_page(portal, await portal.api.get(f"/me/products/{product_id}"))


@router.post("/me/products/{product_id}/edit", response_class=HTMLResponse)
async def update_product(portal: ProviderPortal, product_id: str) -> Response:
    await portal.form()
    return await save_product(portal, await portal.api.get(f"/me/products/{product_id}"))


@router.post("/me/products/{product_id}/{action}")
async def product_action(portal: ProviderPortal, product_id: str, action: str) -> Response:
    """提交审核 / 下架 / 上架: back to the tab the product is in now."""
    await portal.form()
    if action not in PRODUCT_ACTIONS:
        return portal.redirect("/me/products", "未知的操作", "error")
    try:
        done = await portal.api.post(f"/me/products/{product_id}/{action}")
    except ApiError as problem:
        return portal.redirect(portal.back("/me/products"), explained(problem), "error")
    label = done.get("status_label") or labels.PRODUCT_STATES.get(done.get("status", ""), "")
    return portal.redirect(
        f"/me/products?status={done.get('status', '')}",
        f"「{done.get('name', '')}」已{PRODUCT_ACTIONS[action]}，当前状态：{label}",
    )


# --- 服务券兑付 -------------------------------------------------------------------------------------


async def settlements_page(
    portal: Portal,
    state: str = "",
    page: int = 1,
    *,
    claiming: str | None = None,
    problem: ApiError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    state = state if state in labels.SETTLEMENT_STATES else ""
    await portal.api.token()  # renewed once, before the calls run side by side
    listing, detail = await asyncio.gather(
        portal.api.get("/me/settlements", state=state or None, page=max(page, 1)),
        organization(portal),
    )
    counts = dict(listing.get("counts") or {})
    return portal.render(
        "provider/settlements.html",
        status_code,
        listing=listing,
        state=state,
        counts=counts,
        tabs=[("", "全部"), *labels.SETTLEMENT_STATES.items()],
        uploads=SETTLEMENT_UPLOADS,
        claiming=claiming,
        bank_account_set=detail.get("bank_account_set"),
        problem=problem,
    )


@router.get("/me/settlements", response_class=HTMLResponse)
async def settlements(portal: ProviderPortal, state: str = "", page: int = 1) -> HTMLResponse:
    return await settlements_page(portal, state, page)


@router.post("/me/settlements/{settlement_id}/claim", response_class=HTMLResponse)
async def claim(portal: ProviderPortal, settlement_id: str, state: str = "") -> Response:
    """申请兑付 with the three kinds of files (each uploaded to POST /files first)."""
    await portal.form()
    body: dict[str, list[str]] = {}
    try:
        for name, _label in SETTLEMENT_UPLOADS:
            body[name] = await uploads(portal, name)
        missing = {name: f"请上传{label}" for name, label in SETTLEMENT_UPLOADS if not body[name]}
        if missing:
            raise form_problem(missing, "请检查标出的内容")
        await portal.api.post(f"/settlements/{settlement_id}/claim", body)
    except ApiError as problem:
        return await settlements_page(
            portal, state, claiming=settlement_id, problem=problem, status_code=problem.status
        )
    return portal.redirect("/me/settlements?state=claimed", "兑付申请已提交，请等待平台审核")
