"""Where an upload waits while its request reads it.

Starlette keeps a multipart file in memory up to 1 MiB (``MultiPartParser.spool_max_size``)
and writes a larger one to a temporary file. That file goes to ``UPLOAD_TMP_DIR`` when it is
set (a disk-backed volume in production: a memory-backed ``/tmp`` counts against the pod's
memory, and two 10 MiB uploads evicted identity), else to the system's temporary folder.
It is unlinked at once and closed with the request: nothing is left behind.

:class:`UploadDirMiddleware` (every service app, ``common.app``) names the folder for the
requests it serves; the spooled files starlette makes read it from there.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

import starlette.formparsers
from starlette.types import ASGIApp, Receive, Scope, Send

_directory: ContextVar[str | None] = ContextVar("upload_tmp_dir", default=None)


class DiskSpool(SpooledTemporaryFile[bytes]):
    """starlette's spooled file, rolled over into the request's upload folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("dir") is None and len(args) < 8:
            kwargs["dir"] = _directory.get()
        super().__init__(*args, **kwargs)


# starlette.formparsers makes each upload's file by this name.
if not hasattr(starlette.formparsers, "SpooledTemporaryFile"):  # pragma: no cover - a new starlette
    raise ImportError("starlette.formparsers no longer spools uploads with SpooledTemporaryFile")
starlette.formparsers.SpooledTemporaryFile = DiskSpool  # type: ignore[misc, assignment]


def prepare_upload_dir(directory: str | None) -> str | None:
    """The folder made (owner only) and checked writable; None: the system's temporary one."""
    if not directory:
        return None
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"UPLOAD_TMP_DIR {directory} is not writable")
    return str(path)


class UploadDirMiddleware:
    """Uploads of the requests this app serves spool into ``directory``."""

    def __init__(self, app: ASGIApp, directory: str) -> None:
        self.app = app
        self.directory = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _directory.set(self.directory)
        try:
            await self.app(scope, receive, send)
        finally:
            _directory.reset(token)
