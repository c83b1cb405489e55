"""The portal on the real platform: every service, the gateway and the portal as their own
processes (the gateway forwards every page to the portal), one platform per test module.

- ``portal``: that platform (``portal.gateway_url`` is where a browser goes);
- ``visitor``: a :class:`PortalClient` (httpx with a cookie jar, like a browser without
  scripts) for page tests;
- ``browser``: Debian's Chromium driven by Playwright (never a downloaded browser). Without
  it the browser tests are skipped and listed loudly at the end; under ``CI=true`` they FAIL.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common.testing import infra
from common.testing.bus import wait_until
from common.testing.infra import MakeDb
from common.testing.platform import Platform, start_platform
from common.testing.rabbit import RabbitNamespace

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "portal"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
_browser_skips: list[str] = []


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _browser_skips:
        tr = terminalreporter
        tr.section("NO CHROMIUM: portal browser tests did not run", sep="!", red=True, bold=True)
        tr.line(
            f"{len(_browser_skips)} test(s) skipped: install Debian's Chromium (apt-get install chromium).",
            red=True,
        )
        tr.line("Under CI=true these FAIL.", red=True)


@pytest_asyncio.fixture(scope="module")
async def portal(
    module_fresh_db: MakeDb,
    module_rabbit: RabbitNamespace,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    async with start_platform(
        module_fresh_db, module_rabbit, tmp_path_factory.mktemp("portal"), portal=True, demo=True
    ) as started:
        yield started


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CAPTCHA = re.compile(r'name="captcha_id" value="([^"]+)"')


class PortalClient:
    """A browser without scripts: follows redirects, keeps the session cookie, fills forms
    (their CSRF token and graphic captcha included, the captcha answered by the /dev helper)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=True, timeout=30)
        self.last: httpx.Response | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: Any) -> httpx.Response:
        self.last = await self.http.get(path, params=params or None)
        return self.last

    async def until(self, path: str, *texts: str, within: float = 20) -> httpx.Response:
        """Re-opens ``path`` until it shows every one of ``texts``: what a page shows after an
        action often waits for an event between services."""
        page: httpx.Response | None = None

        async def shows() -> bool:
            nonlocal page
            page = await self.get(path)
            return page.status_code == 200 and all(t in page.text for t in texts)

        try:
            await wait_until(shows, within=within, interval=0.3, what=f"{path} showing {list(texts)}")
        except AssertionError:
            text = page.text if page is not None else ""
            missing = [t for t in texts if t not in text]
            raise AssertionError(f"{path} never showed {missing}:\n{text[:3000]}") from None
        assert page is not None
        return page

    def csrf(self, html: str | None = None) -> str:
        html = html if html is not None else (self.last.text if self.last else "")
        found = _CSRF.search(html)
        assert found, "the page has no form with a CSRF token"
        return found.group(1)

    async def captcha_answer(self, html: str) -> tuple[str, str]:
        found = _CAPTCHA.search(html)
        assert found, "the page has no captcha"
        answer = (await self.http.get(f"/api/v1/dev/captcha/{found.group(1)}")).json()["answer"]
        return found.group(1), answer

    async def submit(
        self, page: str, action: str | None = None, *, captcha: bool = False, files: Any = None, **fields: Any
    ) -> httpx.Response:
        """Open ``page``, fill its form with ``fields`` and post it (to ``action`` or the page)."""
        html = (await self.get(page)).text
        data: dict[str, Any] = {"csrf_token": self.csrf(html), **fields}
        if captcha:
            data["captcha_id"], data["captcha_answer"] = await self.captcha_answer(html)
        self.last = await self.http.post(action or page, data=data, files=files)
        return self.last

    async def login(self, phone: str, password: str) -> httpx.Response:
        response = await self.submit(
            "/login", "/login?mode=password", captcha=True, phone=phone, password=password
        )
        assert "退出登录" in response.text, response.text[:2000]
        return response


@pytest_asyncio.fixture
async def visitor(portal: Platform) -> AsyncIterator[PortalClient]:
    client = PortalClient(portal.gateway_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    path = chromium_path()
    if path is None:
        message = "no Chromium: apt-get install chromium (Playwright drives Debian's browser, never a downloaded one)"
        if infra.in_ci():
            pytest.fail(f"{message} (CI=true: the browser tests must run)", pytrace=False)
        _browser_skips.append(request.node.nodeid)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        yield launched
        await launched.close()


class ConsoleErrors(list[str]):
    """JavaScript errors and console errors a page logged (there must be none)."""

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.append(f"console: {msg.text}") if msg.type == "error" else None)
        return page


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(target), full_page=True)
    return target
