"""One request of the portal: its session, its API, and how it answers (a page, a redirect).

Every router takes ``portal: PortalDep``; a page that needs a user or a kind of user takes
``SignedIn`` / ``EnterprisePortal`` / ``ProviderPortal`` / ``StaffPortal`` instead, which send a
visitor to 登录 and tell a user who may not be here what to do next.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from common.http import client_ip
from common.money import yuan_to_fen
from web.client import Api, ApiClient, ApiError, NotSignedIn
from web.session import Session

# How old the session's copy of /me may be before a page reads it again: a suspension, a
# restore or an onboarding shows in the menus and banners within this time.
ME_MAX_AGE_SECONDS = 60


class CsrfFailed(Exception):
    """A state-changing form came without this session's CSRF token."""


class FormInvalid(Exception):
    """A field the portal checks itself before asking the API (an amount in yuan)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class NotAllowed(Exception):
    """A signed-in user on a page that is not theirs: ``hint`` says what to do next."""

    def __init__(self, title: str, hint: str, link: tuple[str, str] | None = None) -> None:
        super().__init__(title)
        self.title = title
        self.hint = hint
        self.link = link


class Portal:
    def __init__(self, request: Request) -> None:
        self.request = request
        self.session: Session = request.scope["portal_session"]
        client: ApiClient = request.app.state.api
        hops: int = request.app.state.settings.trusted_proxy_hops
        self.api = Api(client, self.session, client_ip(request.scope, hops))
        self._form: FormData | None = None

    # --- answering ------------------------------------------------------------------------
    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        templates = self.request.app.state.templates
        context.setdefault("problem", None)
        context.setdefault("form", {})
        return templates.TemplateResponse(
            self.request, template, {"portal": self, **context}, status_code=status_code
        )

    def redirect(self, url: str, message: str | None = None, kind: str = "success") -> RedirectResponse:
        if message:
            self.session.flash(message, kind)
        return RedirectResponse(url, status_code=303)

    def back(self, default: str = "/") -> str:
        """Where a form came from (same site only), for a redirect after it."""
        target = self.request.query_params.get("next") or default
        return target if target.startswith("/") and not target.startswith("//") else default

    # --- forms ----------------------------------------------------------------------------
    async def form(self) -> FormData:
        """The posted form, once its CSRF token is checked."""
        if self._form is None:
            form = await self.request.form(max_files=20, max_fields=200, max_part_size=11 * 1024 * 1024)
            if not self.session.csrf_ok(str(form.get("csrf_token") or "")):
                raise CsrfFailed
            self._form = form
        return self._form

    async def values(self) -> dict[str, str]:
        """The form's text fields (what a re-rendered form shows back)."""
        form = await self.form()
        return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}

    async def fen(self, name: str, *, required: bool = True, label: str = "金额") -> int | None:
        """A yuan amount the user typed in the field ``name`` (named as the API's ``*_fen``)."""
        raw = str((await self.form()).get(name) or "").strip().replace(",", "").replace("，", "")
        if not raw:
            if required:
                raise FormInvalid({name: f"请填写{label}"})
            return None
        try:
            return yuan_to_fen(raw)
        except (ValueError, TypeError):
            raise FormInvalid({name: f"{label}应为元，最多两位小数，例如 10000 或 10000.50"}) from None

    async def upload_files(self, name: str) -> list[str]:
        """Uploads the files of the field ``name`` to POST /files; their ids."""
        ids: list[str] = []
        for item in (await self.form()).getlist(name):
            if isinstance(item, UploadFile) and item.filename:
                content = await item.read()
                if content:
                    stored = await self.api.upload(item.filename, content, item.content_type or "")
                    ids.append(str(stored["file_id"]))
        return ids

    # --- who is here ----------------------------------------------------------------------
    @property
    def user(self) -> dict[str, Any]:
        return self.session.user

    @property
    def organization(self) -> dict[str, Any] | None:
        return self.session.organization

    def login_url(self) -> str:
        return "/login?next=" + quote(
            self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
        )


async def _portal(request: Request) -> Portal:
    return Portal(request)


async def _signed_in(portal: Annotated[Portal, Depends(_portal)]) -> Portal:
    if not portal.session.signed_in:
        raise NotSignedIn
    if not portal.session.user.get("role") or portal.session.me_older_than(ME_MAX_AGE_SECONDS):
        await portal.api.load_me()
    return portal


async def _enterprise(portal: Annotated[Portal, Depends(_signed_in)]) -> Portal:
    if portal.session.is_staff:
        raise NotAllowed("这是企业的页面", "平台人员请使用管理端。", ("/admin", "进入管理端"))
    return portal


async def _provider(portal: Annotated[Portal, Depends(_signed_in)]) -> Portal:
    if portal.session.is_staff:
        raise NotAllowed("这是服务机构的页面", "平台人员请使用管理端。", ("/admin", "进入管理端"))
    if not portal.session.capable("provider"):
        await portal.api.load_me()  # onboarded a moment ago?
    if not portal.session.capable("provider"):
        raise NotAllowed(
            "贵单位还不是平台的服务机构",
            "完成企业信息认证后，提交「申请入驻平台」，平台审核通过后即可管理服务产品和服务订单。",
            ("/me/provider-application", "申请入驻平台"),
        )
    return portal


async def _staff(portal: Annotated[Portal, Depends(_signed_in)]) -> Portal:
    if not portal.session.is_staff:
        raise NotAllowed("仅平台人员可进入管理端", "请使用平台人员账号登录。", ("/logout", "退出登录"))
    return portal


PortalDep = Annotated[Portal, Depends(_portal)]
SignedIn = Annotated[Portal, Depends(_signed_in)]
EnterprisePortal = Annotated[Portal, Depends(_enterprise)]
ProviderPortal = Annotated[Portal, Depends(_provider)]
StaffPortal = Annotated[Portal, Depends(_staff)]

__all__ = [
    "ApiError",
    "CsrfFailed",
    "EnterprisePortal",
    "FormInvalid",
    "NotAllowed",
    "NotSignedIn",
    "Portal",
    "PortalDep",
    "ProviderPortal",
    "Response",
    "SignedIn",
    "StaffPortal",
]
