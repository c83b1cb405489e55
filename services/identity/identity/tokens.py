"""Signing keys and the tokens identity issues.

- access tokens: EdDSA JWTs (15 min) with role, organisation, capabilities and session id
  (``sid``: the refresh-token family), issued at a moment to the millisecond, and the account's
  phone and contact name (``phone``, ``name``: what orders keeps as the enterprise's contact on
  an order it submits, without asking identity at every submission; the holder's own data);
- identity-verification tokens: EdDSA JWTs (``typ = idv``) bound to person, purpose, object;
- refresh tokens: opaque ``<id>.<secret>`` strings; only a SHA-256 of each is stored.
Other services verify the JWTs with the public keys identity serves as a JWKS.

Rotating the signing key (deploy/README.md, "Rotate the JWT signing key"): the new private key
becomes ``IDENTITY_JWT_PRIVATE_KEY`` and the old key's public half goes to
``IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS``; the JWKS then serves both (:class:`KeyRing`), so the
tokens signed before the rotation keep verifying everywhere until they expire (the access-token
lifetime), after which the previous key is removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from identity.models import SigningKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the OKP key: stable across replicas sharing one key."""
    x = _b64url(public_raw(public_key))
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the JWT signing key must be an Ed25519 private key (PEM)")
    return key


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class Signer:
    private_key: Ed25519PrivateKey
    kid: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.public_key), "kid": self.kid}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.jwk()]}


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(public_raw(public_key)),
        "kid": key_id(public_key),
        "alg": "EdDSA",
        "use": "sig",
    }


@dataclass
class KeyRing(Signer):
    """The current signing key, and the previous keys' public halves: they no longer sign, but
    the JWKS keeps serving them during a rotation's overlap so that their tokens still verify."""

    previous: list[Ed25519PublicKey] = field(default_factory=list)

    def verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        keys = {key_id(k): k for k in self.previous}
        keys[self.kid] = self.public_key
        return keys

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.jwk()] + [public_jwk(k) for k in self.previous if key_id(k) != self.kid]}


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def read_public_keys(text: str | None) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys in ``text``: PEM blocks, one after another (any separator: new
    lines, commas). A private key's block stands for its public half. A ValueError naming
    ``IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS`` for anything else, so a mistyped key stops identity at
    start instead of signing everyone out at the rotation."""
    if text is None or not text.strip():
        return []
    setting = "IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS"
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text.replace("\\n", "\n"))]
    rest = _PEM_BLOCK.sub("", text.replace("\\n", "\n")).replace(",", "").strip()
    if not blocks or rest:
        raise ValueError(f"{setting} must be Ed25519 public keys (PEM), one after another")
    keys: list[Ed25519PublicKey] = []
    for block in blocks:
        try:
            if "PRIVATE" in block.split("\n", 1)[0]:
                loaded: Any = serialization.load_pem_private_key(block.encode(), password=None).public_key()
            else:
                loaded = serialization.load_pem_public_key(block.encode())
        except (ValueError, TypeError):
            raise ValueError(f"{setting}: a key could not be read (PEM)") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError(f"{setting} must hold Ed25519 keys only")
        keys.append(loaded)
    return keys


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


async def load_signer(
    session: AsyncSession,
    configured_pem: str | None,
    *,
    allow_generate: bool,
    previous_public_keys: str | None = None,
) -> KeyRing:
    """The configured key (and the previous ones it rotated out, verifying only); else
    (development) the one kept in the database, made once."""
    previous = read_public_keys(previous_public_keys)
    if configured_pem:
        key = load_private_key(configured_pem)
        return KeyRing(key, key_id(key.public_key()), previous)
    if not allow_generate:
        raise RuntimeError("no JWT signing key configured")
    row = (await session.exec(select(SigningKey).order_by(col(SigningKey.created_at)).limit(1))).first()
    if row is None:
        key = Ed25519PrivateKey.generate()
        kid = key_id(key.public_key())
        session.add(SigningKey(kid=kid, private_pem=private_pem(key)))
        await session.commit()
        # Another replica may have raced us: whichever row is oldest wins for everyone.
        row = (await session.exec(select(SigningKey).order_by(col(SigningKey.created_at)).limit(1))).first()
    assert row is not None
    return KeyRing(load_private_key(row.private_pem), row.kid, previous)


def issued_at() -> tuple[float, int]:
    """(iat, now in whole seconds). ``iat`` is the moment to the millisecond, never later than
    it (RFC 7519 allows a fraction): a revocation refuses the tokens issued before its moment
    (common.access), so a token issued the same second after it must not look older."""
    now = time.time()
    return math.floor(now * 1000) / 1000, int(now)


def access_claims(
    *,
    user_id: str,
    role: str,
    org_id: str | None,
    capabilities: list[str],
    session_id: str,
    issuer: str,
    audience: str,
    ttl: int,
    phone: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    iat, now = issued_at()
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": iat,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "typ": "access",
        "role": role,
        "org": org_id,
        "caps": capabilities,
        "sid": session_id,
    }
    if phone:
        claims["phone"] = phone
    if name:
        claims["name"] = name
    return claims


def verification_claims(
    *,
    verification_id: str,
    user_id: str,
    org_id: str | None,
    purpose: str,
    object_id: str | None,
    issuer: str,
    audience: str,
    ttl: int,
) -> dict[str, Any]:
    iat, now = issued_at()
    return {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": iat,
        "exp": now + ttl,
        "jti": verification_id,
        "typ": "idv",
        "org": org_id,
        "purpose": purpose,
        "obj": object_id,
    }


def new_refresh_token() -> tuple[str, str, str]:
    """(token id, the token to hand out, the hash to store)."""
    token_id = str(uuid.uuid4())
    token = f"{token_id}.{secrets.token_urlsafe(32)}"
    return token_id, token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_refresh_token(token: str) -> str | None:
    token_id, sep, secret = token.partition(".")
    if not sep or not secret or len(token_id) != 36:
        return None
    try:
        uuid.UUID(token_id)
    except ValueError:
        return None
    return token_id


def same_hash(token: str, stored: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored)
