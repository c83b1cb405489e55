"""Checking an identity-verification token (人脸认证) where it is spent.

Identity issues, for a passed face check, a short-lived EdDSA JWT (``typ = idv``) bound to the
person (``sub``), their organisation (``org``), the purpose (``seal`` or ``sign_contract``) and
the object (``obj``: the contract id, or none for a seal). The service that acts on it (contracts,
when it makes a seal or signs) checks every binding here, so a token passed for one contract
cannot sign another, nor someone else's.

Every refusal is a 403 (never a 401, which a client would take for "your session ended"):
``verification_invalid`` for a forged, foreign, mismatched or malformed token and
``verification_expired`` for one past its lifetime; the client starts a new face check.
"""

from __future__ import annotations

from typing import Any

from common.auth import TokenVerifier
from common.errors import Problem
from common.errors import verification_expired as verification_expired
from common.errors import verification_invalid as verification_invalid

IDV_TYP = "idv"


async def check_verification_token(
    verifier: TokenVerifier,
    token: str,
    *,
    user_id: str,
    purpose: str,
    object_id: str | None = None,
    org_id: str | None = None,
) -> dict[str, Any]:
    """The token's claims when it is a genuine ``idv`` token of ``user_id`` for ``purpose`` and
    ``object_id`` (``None``: a token bound to no object) and, when given, ``org_id``; else a
    403 problem."""
    if not isinstance(token, str) or not token:
        raise verification_invalid()
    try:
        claims = await verifier.decode(token, typ=IDV_TYP)
    except Problem as exc:
        raise (verification_expired() if exc.code == "token_expired" else verification_invalid()) from None
    if (
        claims.get("sub") != user_id
        or claims.get("purpose") != purpose
        or claims.get("obj") != object_id
        or (org_id is not None and claims.get("org") != org_id)
    ):
        raise verification_invalid()
    return claims
