"""Answers of the file routes, and the grant the internal endpoint takes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from identity.schemas.auth import Strict

# --- files -------------------------------------------------------------------------------------


class FileOut(BaseModel):
    file_id: str
    name: str
    content_type: str
    size: int
    sha256: str


class FileMetaOut(BaseModel):
    file_id: str
    organization_id: str | None
    uploader_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime | None = None


class GrantIn(Strict):
    organization_id: str = Field(min_length=1, max_length=36)
    reason: str | None = Field(default=None, max_length=200)
