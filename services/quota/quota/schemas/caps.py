"""Providers' caps on general subsidies."""

from __future__ import annotations

from pydantic import BaseModel

from quota.schemas import Orm, PositiveFen, Reason


class CapIn(BaseModel):
    cap_fen: PositiveFen
    reason: Reason
    year: int | None = None


class CapOut(Orm):
    provider_id: str
    year: int
    cap_fen: int
    reserved_fen: int
    used_fen: int
    reason: str | None
