"""The deal, for both parties (and read-only for staff): 订单详情 before 提交订单, 我购买的服务 /
我的服务订单 with their tabs, the order page (status bar, 双方联系方式, 服务进度, the contract with
起草 / 提交 / 同意 / 退回修改 / 签署, the payment screen with 对公转账 and 到账核实, 开始服务 /
服务完成, 服务评价), 制作签章, the 人脸认证 page, and the contract PDF and stored files passed on.

What each party may do comes from the API's ``actions`` (order, contract, payment); the portal
only shows those buttons and posts them. A face check (人脸认证) is finished here: once it has
passed, the portal itself makes the seal or signs the contract the check was for."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from common.categories import voucher_type_for
from common.pagination import MAX_PAGE_SIZE
from web import labels
from web.client import ApiError
from web.deps import EnterprisePortal, FormInvalid, Portal, ProviderPortal, SignedIn
from web.pages import form_problem, page_number, safe_path

router = APIRouter()

ORDER_PAGE_SIZE = 10
TAB_KEYS = {key for key, _ in labels.ORDER_TABS if key}

# What a person acting on an order sees: the API's action -> the manual's button.
ORDER_ACTION_LABELS = {
    "cancel": "取消订单",
    "pay": "去支付",
    "evaluate": "评价",
    "accept": "接单",
    "reject": "拒绝",
    "start_service": "开始服务",
    "complete_service": "服务完成",
}
VERIFY_PURPOSES = {"seal": "制作签章", "sign_contract": "签署合同"}
# The API's answer when the same rendered form (its Idempotency-Key) comes again with another
# body (the receipt uploaded anew) or while the first is still in hand: it was submitted.
ALREADY_SUBMITTED = ("idempotency_key_reused", "idempotency_key_in_flight")


# --- helpers ---------------------------------------------------------------------------------


def idempotency_key() -> str:
    """One per rendered form: a double submit of that form is one order / one transfer."""
    return uuid.uuid4().hex


async def _optional(portal: Portal, path: str, **params: Any) -> Any:
    """A part that does not exist yet (the contract before acceptance, the payment plan
    before signing): None instead of an error page."""
    try:
        return await portal.api.get(path, **params)
    except ApiError as exc:
        if exc.status in (403, 404, 409):
            return None
        raise


def progress_bar(order: dict[str, Any]) -> list[tuple[str, str]]:
    """The six steps (labels.ORDER_STEPS) with their class, done, current or nothing, where
    orders places the order (``steps_done``, ``current_step``, numbered from 1)."""
    done = set(order.get("steps_done") or ())
    current = order.get("current_step")
    return [
        (label, "done" if n in done else "current" if n == current else "")
        for n, label in enumerate(labels.ORDER_STEPS, start=1)
    ]


def party_of(portal: Portal, order: dict[str, Any]) -> str:
    """Who is looking: the order's enterprise, its provider, or staff."""
    org = (portal.organization or {}).get("id")
    if portal.session.is_staff:
        return "staff"
    if org and org == order.get("provider_id") and org != order.get("enterprise_id"):
        return "provider"
    if org and org == order.get("enterprise_id"):
        return "enterprise"
    if org and org == order.get("provider_id"):
        return "provider"
    return "staff"


# --- 订单详情 before 提交订单 --------------------------------------------------------------------


async def _usable_voucher(portal: Portal, category: str) -> dict[str, Any] | None:
    try:
        wanted = voucher_type_for(category)
    except ValueError:
        return None
    mine = await portal.api.get("/me/vouchers")
    for item in mine.get("items") or []:
        if item.get("voucher_type") == wanted and item.get("state") == "active" and item.get("voucher_id"):
            return dict(item)
    return None


async def _new_order_page(
    portal: Portal, product_id: str, problem: ApiError | None = None, status_code: int = 200
) -> HTMLResponse:
    product = await portal.api.get(f"/products/{quote(product_id, safe='')}")
    voucher = await _usable_voucher(portal, str(product.get("category") or ""))
    quote_ = None
    if voucher:
        try:
            quote_ = await portal.api.get(
                f"/vouchers/{voucher['voucher_id']}/quote",
                product_id=product["id"],
                amount_fen=product["platform_price_fen"],
            )
        except ApiError:
            quote_ = None
    return portal.render(
        "orders/new.html",
        status_code,
        product=product,
        voucher=voucher,
        quote=quote_,
        idempotency_key=idempotency_key(),
        problem=problem,
    )


@router.get("/orders/new", response_class=HTMLResponse)
async def new_order(portal: EnterprisePortal, product_id: str = "") -> Response:
    if not product_id:
        return portal.redirect("/products?type=general", "请先选择要购买的服务产品", "info")
    return await _new_order_page(portal, product_id)


@router.post("/orders", response_class=HTMLResponse)
async def submit_order(portal: EnterprisePortal) -> Response:
    form = await portal.values()
    product_id = form.get("product_id", "")
    body = {"product_id": product_id, "use_voucher": form.get("use_voucher") in ("true", "on", "1")}
    key = form.get("idempotency_key") or idempotency_key()
    try:
        order = await portal.api.post("/orders", body, headers={"Idempotency-Key": key})
    except ApiError as problem:
        if problem.code in ALREADY_SUBMITTED:
            return portal.redirect("/me/orders", "订单已提交，请在「我购买的服务」中查看", "info")
        return await _new_order_page(portal, product_id, problem, problem.status)
    return portal.redirect(
        f"/orders/{order['id']}", f"订单已提交（订单编号 {order['order_no']}），请等待服务机构接单"
    )


# --- 我购买的服务 / 我的服务订单 -----------------------------------------------------------------


async def _order_list(portal: Portal, path: str, base: str, tab: str, page: str | None) -> dict[str, Any]:
    tab = tab if tab in TAB_KEYS else ""
    number = page_number(page)
    listing = await portal.api.get(path, tab=tab or None, page=number, page_size=ORDER_PAGE_SIZE)
    return {
        "listing": listing,
        "tab": tab,
        "base": base,
        "pager_base": base + ("?" + urlencode({"tab": tab}) if tab else ""),
        "here": base + ("?" + urlencode({"tab": tab, "page": number})),
    }


@router.get("/me/orders", response_class=HTMLResponse)
async def my_orders(portal: EnterprisePortal, tab: str = "", page: str | None = None) -> HTMLResponse:
    ctx = await _order_list(portal, "/me/orders", "/me/orders", tab, page)
    return portal.render("orders/list.html", party="enterprise", **ctx)


@router.get("/me/service-orders", response_class=HTMLResponse)
async def my_service_orders(portal: ProviderPortal, tab: str = "", page: str | None = None) -> HTMLResponse:
    ctx = await _order_list(portal, "/me/service-orders", "/me/service-orders", tab, page)
    return portal.render("orders/list.html", party="provider", **ctx)


# --- the order page ---------------------------------------------------------------------------


async def _deal(portal: Portal, order_id: str) -> dict[str, Any]:
    """The order, its contract (with versions) and its payment plan, as far as they exist."""
    oid = quote(order_id, safe="")
    await portal.api.token()  # renewed once here, not by three calls at once
    order, contract, payment = await asyncio.gather(
        portal.api.get(f"/orders/{oid}"),
        _optional(portal, f"/orders/{oid}/contract"),
        _optional(portal, f"/orders/{oid}/payment"),
    )
    versions: list[dict[str, Any]] = []
    if contract and int(contract.get("version") or 0) > 0:
        found = await _optional(portal, f"/contracts/{contract['id']}/versions", page_size=MAX_PAGE_SIZE)
        versions = list((found or {}).get("items") or [])
    return {"order": order, "contract": contract, "payment": payment, "versions": versions}


async def _has_seal(portal: Portal) -> bool:
    try:
        await portal.api.raw("/me/seal")
    except ApiError:
        return False
    return True


async def _order_page(
    portal: Portal,
    order_id: str,
    *,
    template: str = "orders/detail.html",
    problem: ApiError | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    deal = await _deal(portal, order_id)
    party = party_of(portal, deal["order"])
    contract = deal["contract"]
    needs_seal = False
    if contract and "sign" in (contract.get("actions") or []) and party != "staff":
        needs_seal = not await _has_seal(portal)
    return portal.render(
        template,
        status_code,
        **deal,
        party=party,
        steps=progress_bar(deal["order"]),
        needs_seal=needs_seal,
        idempotency_key=idempotency_key(),
        problem=problem,
        form=form or {},
        action_labels=ORDER_ACTION_LABELS,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(order_id: str, portal: SignedIn) -> HTMLResponse:
    return await _order_page(portal, order_id)


@router.get("/orders/{order_id}/payment", response_class=HTMLResponse)
async def payment_page(order_id: str, portal: SignedIn) -> HTMLResponse:
    return await _order_page(portal, order_id, template="orders/payment.html")


async def _order_step(
    portal: Portal, order_id: str, path: str, body: Any, done: str, *, default_next: str | None = None
) -> Response:
    """One of the order's buttons: the API call, then back with a message, or the order page
    with the API's problem."""
    form = await portal.values()
    back = safe_path(portal.request.query_params.get("next"), default_next or f"/orders/{order_id}")
    try:
        await portal.api.post(path, body)
    except ApiError as problem:
        return await _order_page(portal, order_id, problem=problem, form=form, status_code=problem.status)
    return portal.redirect(back, done)


def _oid(order_id: str) -> str:
    return quote(order_id, safe="")


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_order(order_id: str, portal: EnterprisePortal) -> Response:
    reason = (await portal.values()).get("reason", "").strip()
    return await _order_step(
        portal, order_id, f"/orders/{_oid(order_id)}/cancel", {"reason": reason or None}, "已提交取消订单"
    )


@router.post("/orders/{order_id}/accept", response_class=HTMLResponse)
async def accept_order(order_id: str, portal: ProviderPortal) -> Response:
    await portal.form()
    return await _order_step(
        portal, order_id, f"/orders/{_oid(order_id)}/accept", {}, "已接单，请与企业接洽并拟定合同"
    )


@router.post("/orders/{order_id}/reject", response_class=HTMLResponse)
async def reject_order(order_id: str, portal: ProviderPortal) -> Response:
    reason = (await portal.values()).get("reason", "")
    return await _order_step(
        portal, order_id, f"/orders/{_oid(order_id)}/reject", {"reason": reason}, "已拒绝接单"
    )


@router.post("/orders/{order_id}/start-service", response_class=HTMLResponse)
async def start_service(order_id: str, portal: ProviderPortal) -> Response:
    await portal.form()
    return await _order_step(portal, order_id, f"/orders/{_oid(order_id)}/start-service", {}, "已开始服务")


@router.post("/orders/{order_id}/complete-service", response_class=HTMLResponse)
async def complete_service(order_id: str, portal: ProviderPortal) -> Response:
    await portal.form()
    return await _order_step(portal, order_id, f"/orders/{_oid(order_id)}/complete-service", {}, "服务已完成")


@router.post("/orders/{order_id}/evaluation", response_class=HTMLResponse)
async def evaluate(order_id: str, portal: EnterprisePortal) -> Response:
    form = await portal.values()
    rating = form.get("rating", "")
    if not rating.isdigit():
        problem = ApiError(422, "invalid_input", "请选择评价等级", errors={"rating": "请选择 1 至 5 星"})
        return await _order_page(portal, order_id, problem=problem, form=form, status_code=422)
    body = {"rating": int(rating), "content": form.get("content", "").strip()}
    return await _order_step(
        portal, order_id, f"/orders/{_oid(order_id)}/evaluation", body, "评价已提交，感谢您的评价"
    )


# --- the contract -------------------------------------------------------------------------------


async def _contract_of(portal: Portal, order_id: str) -> dict[str, Any]:
    contract: dict[str, Any] = await portal.api.get(f"/orders/{_oid(order_id)}/contract")
    return contract


@router.get("/orders/{order_id}/contract/edit", response_class=HTMLResponse)
async def contract_form(order_id: str, portal: ProviderPortal) -> HTMLResponse:
    return await _contract_form(portal, order_id)


async def _contract_form(
    portal: Portal,
    order_id: str,
    problem: ApiError | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    order, contract = await asyncio.gather(
        portal.api.get(f"/orders/{_oid(order_id)}"), _contract_of(portal, order_id)
    )
    versions = await _optional(portal, f"/contracts/{contract['id']}/versions", page_size=MAX_PAGE_SIZE)
    return portal.render(
        "orders/contract_edit.html",
        status_code,
        order=order,
        contract=contract,
        versions=(versions or {}).get("items") or [],
        problem=problem,
        form=form or {},
    )


@router.post("/orders/{order_id}/contract/edit", response_class=HTMLResponse)
async def save_contract(order_id: str, portal: ProviderPortal) -> Response:
    form = await portal.values()
    try:
        total = await portal.fen("total_fen", label="合同总金额")
        deposit = await portal.fen("deposit_fen", label="合同定金")
    except FormInvalid as exc:
        return await _contract_form(portal, order_id, form_problem(exc.errors, "请检查填写的内容"), form, 422)
    contract = await _contract_of(portal, order_id)
    body = {"total_fen": total, "deposit_fen": deposit, "terms": form.get("terms", "")}
    try:
        await portal.api.put(f"/contracts/{contract['id']}", body)
        if form.get("then") == "submit":
            await portal.api.post(f"/contracts/{contract['id']}/submit")
    except ApiError as problem:
        return await _contract_form(portal, order_id, problem, form, problem.status)
    if form.get("then") == "submit":
        return portal.redirect(f"/orders/{order_id}", "合同已提交给企业确认")
    return portal.redirect(f"/orders/{order_id}/contract/edit", "合同已保存")


async def _contract_step(portal: Portal, order_id: str, action: str, body: Any, done: str) -> Response:
    form = await portal.values()
    try:
        contract = await _contract_of(portal, order_id)
        await portal.api.post(f"/contracts/{contract['id']}/{action}", body)
    except ApiError as problem:
        return await _order_page(portal, order_id, problem=problem, form=form, status_code=problem.status)
    return portal.redirect(safe_path(portal.request.query_params.get("next"), f"/orders/{order_id}"), done)


@router.post("/orders/{order_id}/contract/submit", response_class=HTMLResponse)
async def submit_contract(order_id: str, portal: ProviderPortal) -> Response:
    return await _contract_step(portal, order_id, "submit", {}, "合同已提交给企业确认")


@router.post("/orders/{order_id}/contract/agree", response_class=HTMLResponse)
async def agree_contract(order_id: str, portal: EnterprisePortal) -> Response:
    return await _contract_step(portal, order_id, "agree", {}, "已同意合同，合同不可再修改，请签署合同")


@router.post("/orders/{order_id}/contract/return", response_class=HTMLResponse)
async def return_contract(order_id: str, portal: EnterprisePortal) -> Response:
    reason = (await portal.values()).get("reason", "")
    return await _contract_step(portal, order_id, "return", {"reason": reason}, "合同已退回服务机构修改")


@router.post("/orders/{order_id}/contract/sign", response_class=HTMLResponse)
async def sign_contract(order_id: str, portal: EnterprisePortal) -> Response:
    """签署合同: first a face check for this contract; the signature follows when it passes."""
    form = await portal.values()
    try:
        contract = await _contract_of(portal, order_id)
        started = await portal.api.post(
            "/me/identity-verifications", {"purpose": "sign_contract", "object_id": contract["id"]}
        )
    except ApiError as problem:
        return await _order_page(portal, order_id, problem=problem, form=form, status_code=problem.status)
    return portal.redirect(
        f"/verify/{started['verification_id']}?" + urlencode({"next": f"/orders/{order_id}"}),
        "请完成人脸认证以签署合同",
        "info",
    )


@router.get("/contracts/{contract_id}/document")
async def contract_document(contract_id: str, portal: SignedIn) -> Response:
    """查看合同: the PDF as the API gives it, shown in the browser."""
    got = await portal.api.raw(f"/contracts/{quote(contract_id, safe='')}/document")
    disposition = got.headers.get("content-disposition") or f'inline; filename="contract-{contract_id}.pdf"'
    return Response(
        got.content,
        media_type=got.headers.get("content-type", "application/pdf"),
        headers={"Content-Disposition": disposition, "Cache-Control": "private, no-store"},
    )


# --- payment: 确认汇款 and 到账核实 --------------------------------------------------------------


@router.post("/orders/{order_id}/remittances", response_class=HTMLResponse)
async def remit(order_id: str, portal: EnterprisePortal) -> Response:
    form = await portal.values()
    back = f"/orders/{order_id}/payment"
    try:
        amount = await portal.fen("amount_fen", label="汇款金额")
    except FormInvalid as exc:
        return await _order_page(
            portal,
            order_id,
            template="orders/payment.html",
            problem=form_problem(exc.errors, "请检查填写的内容"),
            form=form,
            status_code=422,
        )
    try:
        receipts = await portal.upload_files("receipt_file_ids")
        body = {
            "amount_fen": amount,
            "bank_reference": form.get("bank_reference", "").strip(),
            "payer_account": form.get("payer_account", "").strip(),
            "receipt_file_ids": receipts,
        }
        key = form.get("idempotency_key") or idempotency_key()
        await portal.api.post(f"/orders/{_oid(order_id)}/remittances", body, headers={"Idempotency-Key": key})
    except ApiError as problem:
        if problem.code in ALREADY_SUBMITTED:
            return portal.redirect(back, "该汇款已提交过，请查看下方的汇款记录", "info")
        return await _order_page(
            portal,
            order_id,
            template="orders/payment.html",
            problem=problem,
            form=form,
            status_code=problem.status,
        )
    return portal.redirect(back, "汇款信息已提交，待服务机构核实到账")


async def _decide_remittance(portal: Portal, order_id: str, remittance_id: str, confirm: bool) -> Response:
    form = await portal.values()
    rid = quote(remittance_id, safe="")
    try:
        if confirm:
            await portal.api.post(f"/remittances/{rid}/confirm")
        else:
            await portal.api.post(f"/remittances/{rid}/reject", {"reason": form.get("reason", "")})
    except ApiError as problem:
        return await _order_page(
            portal,
            order_id,
            template="orders/payment.html",
            problem=problem,
            form=form,
            status_code=problem.status,
        )
    back = safe_path(portal.request.query_params.get("next"), f"/orders/{order_id}/payment")
    return portal.redirect(back, "已确认到账" if confirm else "已标记为未到账")


@router.post("/orders/{order_id}/remittances/{remittance_id}/confirm", response_class=HTMLResponse)
async def confirm_remittance(order_id: str, remittance_id: str, portal: ProviderPortal) -> Response:
    return await _decide_remittance(portal, order_id, remittance_id, True)


@router.post("/orders/{order_id}/remittances/{remittance_id}/reject", response_class=HTMLResponse)
async def reject_remittance(order_id: str, remittance_id: str, portal: ProviderPortal) -> Response:
    return await _decide_remittance(portal, order_id, remittance_id, False)


@router.get("/files/{file_id}")
async def stored_file(file_id: str, portal: SignedIn) -> Response:
    """A stored file (a receipt, a contract proof) passed on to whoever may read it."""
    got = await portal.api.raw(f"/files/{quote(file_id, safe='')}")
    headers = {"Cache-Control": "private, no-store"}
    if got.headers.get("content-disposition"):
        headers["Content-Disposition"] = got.headers["content-disposition"]
    return Response(
        got.content, media_type=got.headers.get("content-type", "application/octet-stream"), headers=headers
    )


# --- 制作签章 --------------------------------------------------------------------------------------


@router.get("/me/seal", response_class=HTMLResponse)
async def seal_page(portal: EnterprisePortal) -> HTMLResponse:
    return portal.render(
        "orders/seal.html",
        has_seal=await _has_seal(portal),
        is_owner=portal.user.get("role") == "owner",
        next=safe_path(portal.request.query_params.get("next"), ""),
    )


@router.get("/me/seal/image")
async def seal_image(portal: EnterprisePortal) -> Response:
    got = await portal.api.raw("/me/seal")
    return Response(
        got.content,
        media_type=got.headers.get("content-type", "image/png"),
        headers={"Cache-Control": "private, no-store"},
    )


@router.post("/me/seal", response_class=HTMLResponse)
async def start_seal(portal: EnterprisePortal) -> Response:
    await portal.form()
    back = safe_path(portal.request.query_params.get("next"), "/me/seal")
    try:
        started = await portal.api.post("/me/identity-verifications", {"purpose": "seal"})
    except ApiError as problem:
        return portal.render(
            "orders/seal.html",
            problem.status,
            has_seal=False,
            is_owner=portal.user.get("role") == "owner",
            next=back,
            problem=problem,
        )
    return portal.redirect(
        f"/verify/{started['verification_id']}?" + urlencode({"next": back}),
        "请完成人脸认证以制作签章",
        "info",
    )


# --- 人脸认证 -------------------------------------------------------------------------------------


def _vid(verification_id: str) -> str:
    return quote(verification_id, safe="")


async def _verification(portal: Portal, verification_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await portal.api.get(f"/me/identity-verifications/{_vid(verification_id)}")
    return found


def _verify_default(check: dict[str, Any]) -> str:
    return "/me/seal" if check.get("purpose") == "seal" else "/me/orders"


@router.get("/verify/{verification_id}", response_class=HTMLResponse)
async def verify_page(verification_id: str, portal: SignedIn) -> HTMLResponse:
    """The check as the API gives it: with a vendor, its page to open on a phone (a link and
    its QR code) and 我已完成人脸认证; the simulated one (development) 通过 / 不通过."""
    check = await _verification(portal, verification_id)
    return portal.render(
        "orders/verify.html",
        check=check,
        purpose=VERIFY_PURPOSES.get(str(check.get("purpose")), "人脸认证"),
        # The simulated verifier gives no vendor page; a vendor always does.
        simulated=portal.request.app.state.settings.is_development and not check.get("url"),
        next=safe_path(portal.request.query_params.get("next"), _verify_default(check)),
    )


@router.get("/verify/{verification_id}/qr.svg")
async def verify_qr_code(verification_id: str, portal: SignedIn) -> Response:
    """The QR code of the vendor's page, to scan with the phone: an SVG made here (segno), as
    the portal's CSP admits images from itself only (no data: URL)."""
    check = await _verification(portal, verification_id)
    url = check.get("url")
    if check.get("state") != "pending" or not isinstance(url, str) or not url:
        return Response(status_code=404, headers={"Cache-Control": "private, no-store"})
    return Response(qr_svg(url), media_type="image/svg+xml", headers={"Cache-Control": "private, no-store"})


def qr_svg(url: str) -> bytes:
    """A QR code of ``url`` as a standalone SVG (error correction M, 4 px a module)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=4, border=2, title="人脸认证二维码")
    return out.getvalue()


async def _finish(portal: Portal, check: dict[str, Any], back: str) -> Response:
    """The check has passed: make the seal or sign the contract it was for, with its token."""
    token = check.get("token")
    if not token:
        return portal.redirect(back, "人脸认证已过期，请重新认证", "error")
    try:
        if check.get("purpose") == "seal":
            await portal.api.post("/me/seal", {"verification_token": token})
            await portal.api.load_me()
            return portal.redirect(back, "人脸认证通过，电子签章已制作完成")
        contract_id = quote(str(check.get("object_id") or ""), safe="")
        await portal.api.post(f"/contracts/{contract_id}/sign", {"verification_token": token})
    except ApiError as problem:
        hint = labels.HINTS.get(problem.code, (None, None))[0]
        return portal.redirect(back, problem.detail + (f"：{hint}" if hint else ""), "error")
    return portal.redirect(back, "人脸认证通过，合同已签署")


async def _settled(portal: Portal, verification_id: str) -> dict[str, Any]:
    """The check's state once the simulator has decided (a moment, at most a few seconds)."""
    check = await _verification(portal, verification_id)
    for _ in range(20):
        if check.get("state") != "pending":
            break
        await asyncio.sleep(0.25)
        check = await _verification(portal, verification_id)
    return check


async def _outcome(portal: Portal, verification_id: str, check: dict[str, Any]) -> Response:
    back = safe_path(portal.request.query_params.get("next"), _verify_default(check))
    if check.get("state") == "passed":
        return await _finish(portal, check, back)
    if check.get("state") == "failed":
        return portal.redirect(
            back, "人脸认证未通过（须由本人刷脸，且与登记的姓名、证件号码一致），请重新发起认证", "error"
        )
    here = f"/verify/{verification_id}?" + urlencode({"next": back})
    return portal.redirect(
        here, "尚未查询到人脸认证结果，请在手机上完成刷脸后再点击「我已完成人脸认证」", "info"
    )


@router.post("/verify/{verification_id}/{decision}", response_class=HTMLResponse)
async def decide_verification(verification_id: str, decision: str, portal: SignedIn) -> Response:
    """通过 / 不通过 on the simulated check (development), or 我已完成人脸认证 (``check``)."""
    await portal.form()
    if decision in ("pass", "fail"):
        try:
            await portal.api.request(
                "POST", f"/dev/identity-verifications/{_vid(verification_id)}/{decision}"
            )
        except ApiError as problem:
            if problem.code != "verification_not_pending":  # decided already: take its outcome
                raise
    elif decision == "check":
        # 我已完成人脸认证: identity asks the vendor for this check's result and decides it.
        try:
            check: dict[str, Any] = await portal.api.post(
                f"/me/identity-verifications/{_vid(verification_id)}/check"
            )
        except ApiError as problem:
            if problem.status != 503:
                raise
            back = safe_path(portal.request.query_params.get("next"), "/me/seal")
            here = f"/verify/{verification_id}?" + urlencode({"next": back})
            return portal.redirect(here, problem.detail, "error")  # the vendor is out: try again later
        return await _outcome(portal, verification_id, check)
    else:
        return portal.redirect(f"/verify/{verification_id}", "请选择认证结果", "error")
    check = await _settled(portal, verification_id)
    return await _outcome(portal, verification_id, check)
