"""Answers of the file routes (the internal ones' are common.reads': FileMeta, FileGrant)."""

from __future__ import annotations

from pydantic import BaseModel

# --- files -------------------------------------------------------------------------------------


class FileOut(BaseModel):
    file_id: str
    name: str
    content_type: str
    size: int
    sha256: str
