"""Small pieces every area's routes share: paging, links that keep filters, a problem the
portal found in a form itself, a part of a page that may fail alone, the graphic captcha."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from web.client import ApiError
from web.deps import Portal

MAX_PAGE = 100_000


def page_number(raw: Any) -> int:
    """``?page=`` as a page number (1 for anything else)."""
    try:
        return max(1, min(int(raw or 1), MAX_PAGE))
    except (TypeError, ValueError):
        return 1


def link(path: str, params: Mapping[str, Any]) -> str:
    """``path`` with the non-empty ``params`` (the filters a pager or a sort link keeps)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def safe_path(target: str | None, default: str) -> str:
    """A same-site path to go back to (never another site's address)."""
    target = target or ""
    return target if target.startswith("/") and not target.startswith("//") else default


def form_problem(errors: Mapping[str, str], detail: str | None = None) -> ApiError:
    """A problem the portal found in a form itself (an amount in yuan, a repeated password),
    shown as the API's are: at the top of the form and next to each field."""
    return ApiError(422, "form_invalid", detail or "；".join(errors.values()), dict(errors))


async def quietly(portal: Portal, path: str, default: Any = None, **params: Any) -> Any:
    """A part of a page that may fail without failing the page (a figure, a ticker, a name)."""
    try:
        return await portal.api.get(path, **params)
    except ApiError:
        return default


async def new_captcha(portal: Portal) -> dict[str, Any]:
    """A new graphic captcha (id and PNG) for a form; an empty one when identity cannot answer."""
    try:
        found: dict[str, Any] = await portal.api.request("GET", "/captcha", auth=False)
    except ApiError:
        found = {"captcha_id": "", "image_png_base64": ""}
    return found
