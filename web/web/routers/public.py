"""公众端: what anyone may see without signing in (the home page, product lists and details,
providers, the 企业需求 board, notices), and the two things a signed-in user does there:
加入收藏 on a product and 我要对接 on a demand."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from common.categories import CATEGORIES, EQUIPMENT_LEASING, FINANCING_GUARANTEE, GENERAL, categories_for
from common.money import yuan_to_fen
from web.client import ApiError
from web.deps import Portal, PortalDep
from web.pages import link, page_number, quietly

router = APIRouter()

PRODUCT_PAGE_SIZE = 12
DEMAND_PAGE_SIZE = 10
NOTICE_PAGE_SIZE = 20

# The two listings of the manual's top navigation and the categories each shows.
LISTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "general": ("通用券服务", categories_for(GENERAL)),
    "special": (
        "设备更新专项券服务",
        categories_for(EQUIPMENT_LEASING) + categories_for(FINANCING_GUARANTEE),
    ),
}
SORTS: tuple[tuple[str, str], ...] = (("sales", "销量"), ("price", "价格"), ("revenue", "销售额"))
NOTICE_KINDS: tuple[tuple[str, str], ...] = (
    ("", "全部"),
    ("policy", "政策文件"),
    ("guide", "操作指南"),
    ("notice", "通知公告"),
)


@router.get("/", response_class=HTMLResponse)
async def home(portal: PortalDep) -> HTMLResponse:
    stats, campaign, demands, notices = await asyncio.gather(
        quietly(portal, "/portal/stats", {}),
        quietly(portal, "/campaigns/current", None),
        quietly(portal, "/demands", {"items": []}, page_size=5),
        quietly(portal, "/notices", {"items": []}, page_size=10),
    )
    return portal.render(
        "public/home.html", stats=stats, campaign=campaign, demands=demands["items"], notices=notices["items"]
    )


# --- 通用券服务 / 设备更新专项券服务 ------------------------------------------------------------------


def _yuan_filter(raw: str | None, label: str, errors: dict[str, str]) -> tuple[str, int | None]:
    """A price the visitor typed in yuan (the field is named ``*_fen`` as the API's)."""
    text = (raw or "").strip().replace(",", "").replace("，", "")
    if not text:
        return "", None
    try:
        return text, yuan_to_fen(text)
    except (ValueError, TypeError):
        errors[label] = f"{label}应为元，最多两位小数，例如 100 或 99.50"
        return text, None


@router.get("/products", response_class=HTMLResponse)
async def products(
    portal: PortalDep,
    type: str = "general",
    category: str = "",
    q: str = "",
    min_price_fen: str = "",
    max_price_fen: str = "",
    sort: str = "",
    order: str = "desc",
    page: str = "1",
) -> HTMLResponse:
    kind = type if type in LISTINGS else "general"
    title, categories = LISTINGS[kind]
    category = category if category in categories else ""
    sort = sort if sort in dict(SORTS) else ""
    order = "asc" if order == "asc" else "desc"
    q = q.strip()[:50]
    errors: dict[str, str] = {}
    min_text, min_fen = _yuan_filter(min_price_fen, "最低价格", errors)
    max_text, max_fen = _yuan_filter(max_price_fen, "最高价格", errors)
    if min_fen is not None and max_fen is not None and min_fen > max_fen:
        errors["最高价格"] = "最高价格不能低于最低价格"
        max_fen = None
    filters = {
        "type": kind,
        "category": category,
        "q": q,
        "min_price_fen": min_text,
        "max_price_fen": max_text,
        "sort": sort,
        "order": order if sort else "",
    }
    problem: ApiError | None = None
    try:
        listing = await portal.api.get(
            "/products",
            voucher_type=kind,
            category=category,
            q=q,
            min_price_fen=min_fen,
            max_price_fen=max_fen,
            sort=sort,
            order=order,
            page=page_number(page),
            page_size=PRODUCT_PAGE_SIZE,
        )
    except ApiError as exc:
        problem = exc
        listing = {"items": [], "total": 0, "page": 1, "page_size": PRODUCT_PAGE_SIZE}
    sort_links = []
    for key, text in SORTS:
        # the current sort's link turns its order round; another sort starts high to low
        next_order = ("asc" if order == "desc" else "desc") if sort == key else "desc"
        sort_links.append(
            {
                "key": key,
                "text": text,
                "current": sort == key,
                "order": order if sort == key else "",
                "url": link("/products", {**filters, "sort": key, "order": next_order}),
            }
        )
    return portal.render(
        "public/products.html",
        kind=kind,
        title=title,
        categories=categories,
        filters=filters,
        errors=errors,
        problem=problem,
        listing=listing,
        sort_links=sort_links,
        category_link=lambda c: link("/products", {**filters, "category": c}),
        base=link("/products", filters),
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product(portal: PortalDep, product_id: str) -> HTMLResponse:
    detail = await portal.api.get(f"/products/{quote(product_id, safe='')}")
    kind = "general" if detail.get("voucher_type", GENERAL) == GENERAL else "special"
    preview = detail.get("voucher_preview") or {}
    validity = ""
    if preview.get("valid_from") or preview.get("valid_to"):
        validity = f"{_cn_date(preview.get('valid_from'))} ~ {_cn_date(preview.get('valid_to'))}"
    return portal.render(
        "public/product.html", product=detail, kind=kind, listing_title=LISTINGS[kind][0], validity=validity
    )


def _cn_date(value: Any) -> str:
    """``2024-09-13`` -> ``2024年09月13日`` (用券有效期 as the manual prints it)."""
    text = str(value or "")[:10]
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return f"{text[:4]}年{text[5:7]}月{text[8:]}日"
    return text or "-"


@router.post("/products/{product_id}/favorite")
async def favorite(portal: PortalDep, product_id: str) -> Response:
    """加入收藏 / 取消收藏: the page says which one the product is in now (``favorited``)."""
    form = await portal.form()
    page = f"/products/{quote(product_id, safe='')}"
    if not portal.session.signed_in:
        portal.session.flash("请先登录，再收藏服务产品", "info")
        return portal.redirect("/login?next=" + quote(page))
    path = f"/me/favorites/{quote(product_id, safe='')}"
    try:
        if form.get("favorited") == "1":
            await portal.api.delete(path)
            message = "已取消收藏"
        else:
            await portal.api.put(path)
            message = "已加入收藏，可在个人中心「我的收藏」查看"
    except ApiError as problem:
        return portal.redirect(page, problem.detail, "error")
    return portal.redirect(page, message)


# --- 机构详情 ---------------------------------------------------------------------------------------


@router.get("/providers/{provider_id}", response_class=HTMLResponse)
async def provider(portal: PortalDep, provider_id: str, page: str = "1") -> HTMLResponse:
    org = await portal.api.get(
        f"/providers/{quote(provider_id, safe='')}", page=page_number(page), page_size=PRODUCT_PAGE_SIZE
    )
    return portal.render("public/provider.html", org=org, base=f"/providers/{quote(provider_id, safe='')}")


# --- 企业需求 ---------------------------------------------------------------------------------------


@router.get("/demands", response_class=HTMLResponse)
async def demands(portal: PortalDep, category: str = "", q: str = "", page: str = "1") -> HTMLResponse:
    category = category if category in CATEGORIES else ""
    q = q.strip()[:50]
    problem: ApiError | None = None
    try:
        board = await portal.api.get(
            "/demands", category=category, q=q, page=page_number(page), page_size=DEMAND_PAGE_SIZE
        )
    except ApiError as exc:
        problem = exc
        board = {"items": [], "total": 0, "page": 1, "page_size": DEMAND_PAGE_SIZE}
    filters = {"category": category, "q": q}
    return portal.render(
        "public/demands.html",
        board=board,
        filters=filters,
        problem=problem,
        categories=CATEGORIES,
        category_link=lambda c: link("/demands", {**filters, "category": c}),
        base=link("/demands", filters),
    )


async def _demand_page(
    portal: Portal, demand_id: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    demand = await portal.api.get(f"/demands/{quote(demand_id, safe='')}")
    is_provider = portal.session.signed_in and portal.session.capable("provider")
    if is_provider and "form" not in context and not demand.get("responded"):
        # 我要对接 starts from the contact the provider publishes (服务机构信息)
        profile = await quietly(portal, "/me/provider-profile", {})
        context["form"] = {
            "contact_name": profile.get("contact_name") or "",
            "phone": profile.get("contact_phone") or "",
        }
    return portal.render("public/demand.html", status_code, demand=demand, is_provider=is_provider, **context)


@router.get("/demands/{demand_id}", response_class=HTMLResponse)
async def demand(portal: PortalDep, demand_id: str) -> HTMLResponse:
    return await _demand_page(portal, demand_id)


@router.post("/demands/{demand_id}/responses", response_class=HTMLResponse)
async def respond(portal: PortalDep, demand_id: str) -> Response:
    """我要对接: a provider leaves its contact for the demand's enterprise."""
    form = await portal.values()
    page = f"/demands/{quote(demand_id, safe='')}"
    if not portal.session.signed_in:
        portal.session.flash("服务机构登录后可对接", "info")
        return portal.redirect("/login?next=" + quote(page))
    body = {k: form.get(k, "").strip() for k in ("contact_name", "phone", "message")}
    try:
        await portal.api.post(f"/demands/{quote(demand_id, safe='')}/responses", body)
    except ApiError as problem:
        return await _demand_page(portal, demand_id, problem.status, form=form, problem=problem)
    return portal.redirect(page, "已提交对接申请，请等待需求方与您联系")


# --- 政策通知 ---------------------------------------------------------------------------------------


@router.get("/notices", response_class=HTMLResponse)
async def notices(portal: PortalDep, kind: str = "", page: str = "1") -> HTMLResponse:
    kind = kind if kind in dict(NOTICE_KINDS) else ""
    listing = await portal.api.get("/notices", kind=kind, page=page_number(page), page_size=NOTICE_PAGE_SIZE)
    return portal.render(
        "public/notices.html",
        listing=listing,
        kind=kind,
        kinds=NOTICE_KINDS,
        base=link("/notices", {"kind": kind}),
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
async def notice(portal: PortalDep, notice_id: str) -> HTMLResponse:
    item = await portal.api.get(f"/notices/{quote(notice_id, safe='')}")
    return portal.render("public/notice.html", notice=item)
