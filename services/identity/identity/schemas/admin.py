"""Requests and answers of the staff routes: organisations, staff accounts, audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from common.money import Flag
from common.text import FreeText, Name
from identity.schemas.auth import Phone, Strict

StaffRole = Literal["reviewer", "finance", "administrator"]


# --- staff -------------------------------------------------------------------------------------


class AdminOrganizationOut(BaseModel):
    """``AdminOrganizationOut.model_validate(org)``: the ID number only ever masked; the
    suspension's reason and moment show while it lasts."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    uscc: str | None
    kind: str | None
    certified: bool
    certified_at: datetime | None
    capabilities: list[str]
    suspended: bool
    suspended_reason: str | None
    suspended_at: datetime | None
    legal_rep_name: str | None
    legal_rep_id_type: str | None
    legal_rep_id_number: str | None = Field(
        description="masked", validation_alias=AliasChoices("legal_rep_id_masked", "legal_rep_id_number")
    )
    created_at: datetime | None

    @model_validator(mode="after")
    def _suspension_only_while_suspended(self) -> AdminOrganizationOut:
        if not self.suspended:
            self.suspended_reason = None
            self.suspended_at = None
        return self


class ReasonIn(Strict):
    reason: FreeText = Field(min_length=1, max_length=500)


class StaffIn(Strict):
    phone: Phone
    name: Name = Field(min_length=2, max_length=50)
    role: StaffRole
    password: str | None = Field(
        default=None, min_length=1, max_length=128, description="absent: set it with 忘记密码"
    )


class StaffUpdateIn(Strict):
    name: Name | None = Field(default=None, min_length=2, max_length=50)
    role: StaffRole | None = None
    active: Flag | None = None


class StaffOut(BaseModel):
    """``StaffOut.model_validate(user)``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    phone: str
    name: str
    role: str
    active: bool
    has_password: bool
    created_at: datetime | None
    created_by: str | None
