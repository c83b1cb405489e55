"""Accounts: 注册, 登录 (账号密码登录 / 验证码登录), 忘记密码, 退出登录, the SMS code button, and
the live notification stream the bell listens to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from web.client import ApiError, NotSignedIn
from web.deps import CsrfFailed, Portal, PortalDep, SignedIn
from web.pages import new_captcha

router = APIRouter()


async def _send_sms(portal: Portal, purpose: str, fields: dict[str, Any]) -> dict[str, Any]:
    """获取验证码: POST /sms-codes with the form's phone and graphic captcha; what to tell the user."""
    payload = {k: str(fields.get(k) or "").strip() for k in ("phone", "captcha_id", "captcha_answer")}
    try:
        await portal.api.request(
            "POST", "/sms-codes", json={**payload, "purpose": purpose}, auth=purpose == "certify"
        )
    except ApiError as problem:
        return {
            "ok": False,
            "message": problem.detail,
            "code": problem.code,
            "errors": problem.errors,
            "retry_after": problem.retry_after,
            "problem": problem,
        }
    return {"ok": True, "message": "验证码已发送，请查收短信"}


async def _sms_step(
    portal: Portal, template: str, purpose: str, form: dict[str, str], **ctx: Any
) -> Response:
    """The page without JavaScript: its 获取验证码 button submits the form, the code is sent
    and the form comes back with a new captcha (the one typed was spent) and what happened."""
    sent = await _send_sms(portal, purpose, form)
    kept = {
        k: v for k, v in form.items() if k not in ("captcha_answer", "sms_code", "password", "new_password")
    }
    kept.pop("send_sms", None)
    return portal.render(
        template,
        200 if sent["ok"] else sent["problem"].status,
        captcha=await new_captcha(portal),
        form=kept,
        problem=sent.get("problem"),
        sms_message=sent["message"] if sent["ok"] else None,
        **ctx,
    )


async def _signed_in(portal: Portal, tokens: dict[str, Any]) -> Response:
    portal.session.sign_in(tokens)
    me = await portal.api.load_me()
    role = (me.get("user") or {}).get("role")
    default = "/admin" if role in ("reviewer", "finance", "administrator") else "/me"
    return portal.redirect(portal.back(default), "登录成功")


# --- 登录 ------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(portal: PortalDep, mode: str = "password") -> HTMLResponse:
    mode = "sms" if mode == "sms" else "password"
    return portal.render("account/login.html", mode=mode, captcha=await new_captcha(portal))


@router.post("/login", response_class=HTMLResponse)
async def login(portal: PortalDep, mode: str = "password") -> Response:
    form = await portal.values()
    mode = "sms" if mode == "sms" else "password"
    if mode == "sms" and form.get("send_sms"):
        return await _sms_step(portal, "account/login.html", "login", form, mode=mode)
    body = {k: form.get(k, "") for k in ("phone", "captcha_id", "captcha_answer")}
    try:
        if mode == "sms":
            tokens = await portal.api.request(
                "POST", "/auth/login/sms", json={**body, "sms_code": form.get("sms_code", "")}, auth=False
            )
        else:
            tokens = await portal.api.request(
                "POST", "/auth/login", json={**body, "password": form.get("password", "")}, auth=False
            )
    except ApiError as problem:
        form.pop("password", None)
        return portal.render(
            "account/login.html",
            problem.status,
            mode=mode,
            captcha=await new_captcha(portal),
            form=form,
            problem=problem,
        )
    return await _signed_in(portal, tokens)


# --- 注册 ------------------------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
async def register_page(portal: PortalDep) -> HTMLResponse:
    return portal.render("account/register.html", captcha=await new_captcha(portal))


@router.post("/register", response_class=HTMLResponse)
async def register(portal: PortalDep) -> Response:
    form = await portal.values()
    if form.get("send_sms"):
        return await _sms_step(portal, "account/register.html", "register", form)
    body = {k: form.get(k, "").strip() for k in ("enterprise_name", "phone", "sms_code")}
    try:
        tokens = await portal.api.request("POST", "/auth/register", json=body, auth=False)
    except ApiError as problem:
        return portal.render(
            "account/register.html",
            problem.status,
            captcha=await new_captcha(portal),
            form=form,
            problem=problem,
        )
    portal.session.sign_in(tokens)
    await portal.api.load_me()
    return portal.redirect("/me/certification", "注册成功，请完成企业信息认证")


# --- 忘记密码 ---------------------------------------------------------------------------------------


@router.get("/password/reset", response_class=HTMLResponse)
async def reset_page(portal: PortalDep) -> HTMLResponse:
    return portal.render("account/reset.html", captcha=await new_captcha(portal))


@router.post("/password/reset", response_class=HTMLResponse)
async def reset(portal: PortalDep) -> Response:
    form = await portal.values()
    if form.get("send_sms"):
        return await _sms_step(portal, "account/reset.html", "reset_password", form)
    body = {k: form.get(k, "").strip() for k in ("phone", "sms_code", "new_password")}
    try:
        await portal.api.request("POST", "/auth/password/reset", json=body, auth=False)
    except ApiError as problem:
        form.pop("new_password", None)
        return portal.render(
            "account/reset.html",
            problem.status,
            captcha=await new_captcha(portal),
            form=form,
            problem=problem,
        )
    return portal.redirect("/login", "密码已重置，请用新密码登录")


# --- 退出登录 ---------------------------------------------------------------------------------------


@router.post("/logout")
async def logout(portal: PortalDep) -> Response:
    await portal.form()
    if portal.session.signed_in:
        try:  # revoke the refresh token; the session is gone from the browser either way
            await portal.api.request(
                "POST", "/auth/logout", json={"refresh_token": portal.session.refresh_token}
            )
        except (ApiError, NotSignedIn):
            pass
    portal.session.sign_out()
    return portal.redirect("/", "已退出登录")


@router.get("/logout")
async def logout_page(portal: PortalDep) -> HTMLResponse:
    return portal.render("account/logout.html")


# --- 获取验证码 (the button; JSON for portal.js) ------------------------------------------------------


@router.post("/sms-codes")
async def send_sms_code(request: Request, portal: PortalDep) -> JSONResponse:
    if not portal.session.csrf_ok(request.headers.get("x-csrf-token")):
        raise CsrfFailed
    try:
        body: dict[str, Any] = await request.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    purpose = str(body.get("purpose") or "")
    sent = await _send_sms(portal, purpose, body)
    sent.pop("problem", None)
    # The captcha was spent by this request, right or wrong: the page gets a new one.
    captcha = await new_captcha(portal)
    return JSONResponse({**sent, "captcha": captcha})


# --- the bell -----------------------------------------------------------------------------------


@router.get("/notifications/unread")
async def unread(portal: SignedIn) -> JSONResponse:
    page = await portal.api.get("/me/notifications", page_size=1)
    return JSONResponse({"unread": page.get("unread", 0)})


@router.get("/notifications/stream")
async def stream(request: Request, portal: SignedIn) -> Response:
    """The API's live notifications (SSE) passed on with the session's token, which the
    browser never holds."""
    token = await portal.api.token()
    client = portal.api.client
    last = request.headers.get("last-event-id")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async with client.stream("/me/notifications/stream", token=token, last_event_id=last) as response:
                if response.status_code != 200:
                    yield b"retry: 30000\n\n"
                    return
                async for chunk in response.aiter_raw():
                    yield chunk
        except (ApiError, Exception):  # noqa: BLE001 - the browser reconnects on its own
            yield b"retry: 10000\n\n"

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
