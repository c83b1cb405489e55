"""Requests and answers of the identity-verification (人脸认证) routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from identity.schemas.auth import Strict

# --- identity verification ---------------------------------------------------------------------


class VerificationIn(Strict):
    purpose: Literal["seal", "sign_contract"]
    object_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="required for sign_contract: the contract id",
    )


class VerificationStarted(BaseModel):
    verification_id: str
    state: str
    url: str | None = Field(
        default=None, description="the vendor's page to open on a phone (人脸核身); none when simulated"
    )


class VerificationReturned(BaseModel):
    verification_id: str
    state: Literal["pending", "passed", "failed"]


class VerificationOut(BaseModel):
    verification_id: str
    purpose: str
    object_id: str | None
    state: Literal["pending", "passed", "failed"]
    url: str | None = Field(
        default=None,
        description="while pending: the vendor's page to open on a phone (as when started); none when simulated",
    )
    token: str | None = Field(default=None, description="while passed: EdDSA JWT, typ idv")
    expires_in: int | None = None
