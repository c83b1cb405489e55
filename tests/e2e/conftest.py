"""Every service of the registry as its own process, then the gateway, on the real servers.

``platform`` starts each row of ``common.registry`` with uvicorn on a free port and a fresh
database (``e2e_<name>``), ``SERVICE_URLS`` pointing every service at the others and
``GATEWAY_<NAME>_URL`` pointing the gateway at each; ``Platform.urls[name]`` is where each
one listens (the gateway included). A test talks to the gateway (``platform.gateway_url``)
as a client would, and may read ``platform.processes.log_text()`` afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from common.testing.infra import MakeDb
from common.testing.platform import (
    ADMIN_PASSWORD,
    ADMIN_PHONE,
    Platform,
    platform_env,
    start_all,
    start_platform,
)
from common.testing.rabbit import RabbitNamespace

__all__ = ["ADMIN_PASSWORD", "ADMIN_PHONE", "Platform", "platform_env", "start_all"]


@pytest_asyncio.fixture
async def platform(fresh_db: MakeDb, rabbit: RabbitNamespace, tmp_path: Path) -> AsyncIterator[Platform]:
    async with start_platform(fresh_db, rabbit, tmp_path) as started:
        yield started
