"""Tokens for service tests: what identity would issue, signed with a test key.

issuer = TestIssuer()
app = create_app(settings, key_set=issuer.keys, ...)
enterprise = issuer.member(org_id, caps=("enterprise",))
r = await client.get("/api/v1/me/vouchers", headers=enterprise.headers)
seal_token = issuer.idv(enterprise, purpose="seal")
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import KeySet

ISSUER = "voucher-identity"
AUDIENCE = "voucher-platform"


@dataclass(frozen=True)
class Caller:
    token: str
    user_id: str
    role: str
    org_id: str | None
    capabilities: tuple[str, ...] = field(default_factory=tuple)
    phone: str | None = None
    name: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class TestIssuer:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.keys = KeySet()
        self.keys.add(self.kid, self.key.public_key())
        # Every organisation a token was signed for, with the capabilities its tokens named:
        # identity knows what it signed (common.testing.saga.fake_identity answers from it).
        self.orgs: dict[str, set[str]] = {}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def caller(
        self,
        *,
        role: str,
        org_id: str | None = None,
        caps: tuple[str, ...] = (),
        user_id: str | None = None,
        phone: str | None = None,
        name: str | None = None,
        ttl: int = 900,
        session_id: str | None = None,
    ) -> Caller:
        user_id = user_id or str(uuid.uuid4())
        now = time.time()
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "iat": math.floor(now * 1000) / 1000,  # to the millisecond, as identity issues it
            "exp": int(now) + ttl,
            "jti": str(uuid.uuid4()),
            "typ": "access",
            "role": role,
            "org": org_id,
            "caps": list(caps),
            "sid": session_id or str(uuid.uuid4()),
        }
        if phone:
            claims["phone"] = phone
        if name:
            claims["name"] = name
        if org_id:
            self.orgs.setdefault(org_id, set()).update(caps)
        return Caller(self.sign(claims), user_id, role, org_id, caps, phone, name)

    def member(
        self,
        org_id: str | None = None,
        *,
        caps: tuple[str, ...] = ("enterprise",),
        role: str = "owner",
        user_id: str | None = None,
        phone: str | None = None,
        name: str | None = None,
    ) -> Caller:
        """An owner (or agent) of an organisation with these capabilities (and, as identity
        names them in its tokens, the account's phone and contact name)."""
        return self.caller(
            role=role,
            org_id=org_id or str(uuid.uuid4()),
            caps=caps,
            user_id=user_id,
            phone=phone,
            name=name,
        )

    def staff(self, role: str = "reviewer", *, user_id: str | None = None) -> Caller:
        return self.caller(role=role, user_id=user_id)

    def idv(
        self,
        who: Caller,
        *,
        purpose: str,
        object_id: str | None = None,
        ttl: int = 600,
        verification_id: str | None = None,
    ) -> str:
        """A passed face-check token (人脸认证) as identity issues it."""
        now = int(time.time())
        return self.sign(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": who.user_id,
                "iat": now,
                "exp": now + ttl,
                "jti": verification_id or str(uuid.uuid4()),
                "typ": "idv",
                "org": who.org_id,
                "purpose": purpose,
                "obj": object_id,
            }
        )
