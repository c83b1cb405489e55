"""Applications: an enterprise's request for a voucher and the reviewer's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common.text import FREE_TEXT_CHECK
from quota.schemas import Orm, PositiveFen, Reason, VoucherType


class ApplicationIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"voucher_type": "general"},
                {
                    "voucher_type": "equipment_leasing",
                    "requested_fen": 30_000_000,
                    "basis_fen": 200_000_000,
                    "proof_file_ids": ["5f0c7a1e-2b7d-4d8e-9a61-3c2f1b0e9d47"],
                },
            ]
        }
    )

    voucher_type: VoucherType
    requested_fen: PositiveFen | None = None
    basis_fen: PositiveFen | None = None
    proof_file_ids: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=10)
    ] = []


class ApplicationOut(Orm):
    id: str
    state: str
    state_label: str = ""
    enterprise_id: str
    enterprise_name: str
    uscc: str | None
    campaign_year: int
    voucher_type: str
    voucher_type_label: str = ""
    flagged: bool
    tier: str | None
    tier_fen: int | None
    requested_fen: int | None
    basis_fen: int | None
    proof_file_ids: list[str]
    approved_fen: int | None
    reason: str | None
    voucher_id: str | None
    created_at: datetime
    reviewed_at: datetime | None


class ApproveIn(BaseModel):
    approved_fen: PositiveFen | None = None
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), FREE_TEXT_CHECK] | None
    ) = None


class RejectIn(BaseModel):
    reason: Reason
