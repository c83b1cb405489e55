"""FastAPI dependencies of identity's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from common.http import client_ip
from identity.service import IdentityContext


def get_ctx(request: Request) -> IdentityContext:
    return request.app.state.identity  # type: ignore[no-any-return]


def get_client_ip(request: Request) -> str:
    return client_ip(request.scope, request.app.state.settings.trusted_proxy_hops)


Ctx = Annotated[IdentityContext, Depends(get_ctx)]
ClientIp = Annotated[str, Depends(get_client_ip)]
