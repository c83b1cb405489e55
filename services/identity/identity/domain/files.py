"""Rules of files: names, downloads, who may read one. Pure functions, no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from identity.domain.auth import STAFF_ROLES

# --- files -------------------------------------------------------------------------------------

ALLOWED_TYPES = ("application/pdf", "image/jpeg", "image/png")  # judged by the bytes
MAX_FILE_NAME = 255
_EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
_ALIASES = {"application/pdf": (".pdf",), "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg")}
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# Control (Cc), format (Cf: bidi overrides and isolates, zero-width characters), line and
# paragraph separators, and unassigned code points never belong in a shown file name.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})


def human_size(size: int) -> str:
    """``10 MB``, ``512 KB``: how a size limit is told to a user."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.3g} MB"
    if size >= 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size} B"


def clean_file_name(raw: str | None, content_type: str) -> str:
    """The name to show and offer on download: the last path segment of what the client sent,
    without control or invisible formatting characters (the bidi overrides that make
    ``\u202egnp.exe`` look like "exe.png"), at most 255 characters, and always ending in the
    extension of the type its bytes were judged to be (PNG bytes sent as ``x.html`` are
    ``x.png``)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE)
    name = name.strip().strip(".").strip()
    suffix = _EXTENSIONS.get(content_type, "")
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _EXTENSION.fullmatch(ext):
        if "." + ext.lower() in _ALIASES.get(content_type, ()):
            suffix = "." + ext  # the right extension, kept as the user wrote it (.JPEG)
        name = stem.rstrip(". ")
    return (name or "file")[: MAX_FILE_NAME - len(suffix)] + suffix


@dataclass(frozen=True)
class Reader:
    user_id: str
    role: str
    org_id: str | None


def may_read_file(
    reader: Reader, *, file_org_id: str | None, uploader_id: str, granted_org_ids: set[str]
) -> bool:
    """Members of the owning organisation, the uploader, staff, and organisations a deal
    granted access to (the counterparty)."""
    if reader.role in STAFF_ROLES or reader.user_id == uploader_id:
        return True
    if reader.org_id is None:
        return False
    return reader.org_id == file_org_id or reader.org_id in granted_org_ids
