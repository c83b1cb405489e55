"""The seals' rules: who makes an organisation's seal, and what each 人脸认证 is spent on.
Pure, no I/O."""

from __future__ import annotations

# The purposes of identity's verification tokens contracts spends (each token once).
SEAL_PURPOSE = "seal"  # making the organisation's seal (no object)
SIGN_PURPOSE = "sign_contract"  # signing one contract (the token names it as its object)


def may_make_seal(role: str, org_id: str | None) -> bool:
    """Only the organisation's owner (its registrant, the 法定代表人) makes its seal."""
    return role == "owner" and bool(org_id)
