"""Designation lists: what an import accepted and refused."""

from __future__ import annotations

from pydantic import BaseModel


class RejectedRow(BaseModel):
    row: int
    uscc: str
    designation: str = ""
    reason: str


class ImportOut(BaseModel):
    accepted: int
    rejected: list[RejectedRow]
    rejected_total: int
