"""TokenVerifier remembers tokens it verified, without changing a single answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import common.auth
from common.auth import KeySet, TokenVerifier
from common.errors import Problem

ISS, AUD = "voucher-identity", "voucher-platform"


def signed(key: Ed25519PrivateKey, **claims: object) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "u1", "iat": now, "exp": now + 60, "typ": "access"}
    body.update(claims)
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": "k1"})


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def verifier(key: Ed25519PrivateKey) -> TokenVerifier:
    return TokenVerifier(KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature checks (jwt.decode calls) the verifier makes."""
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(common.auth.jwt, "decode", counting)
    return calls


async def test_a_verified_token_is_not_checked_again(
    key: Ed25519PrivateKey, verifier: TokenVerifier, decodes: list[str]
) -> None:
    token = signed(key, role="owner")
    first = await verifier.principal(token)
    for _ in range(5):
        assert await verifier.principal(token) == first
    assert len(decodes) == 1
    claims = await verifier.decode(token)
    claims["role"] = "administrator"  # callers get their own copy
    assert (await verifier.principal(token)).role == "owner"


async def test_a_remembered_token_still_expires_on_time(
    key: Ed25519PrivateKey, verifier: TokenVerifier
) -> None:
    # Expired 4 s ago: accepted for about one more second thanks to the 5 s leeway.
    token = signed(key, exp=int(time.time()) - 4)
    await verifier.principal(token)
    await verifier.principal(token)
    await asyncio.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] + 5 - time.time()) + 0.1
    )
    with pytest.raises(Problem) as err:
        await verifier.principal(token)
    assert err.value.code == "token_expired"


async def test_refused_tokens_are_never_remembered(
    key: Ed25519PrivateKey, verifier: TokenVerifier, decodes: list[str]
) -> None:
    good = signed(key)
    await verifier.principal(good)
    forged = good.rsplit(".", 1)[0] + "." + signed(Ed25519PrivateKey.generate()).rsplit(".", 1)[1]
    for _ in range(3):
        with pytest.raises(Problem) as err:
            await verifier.principal(forged)
        assert err.value.code == "token_invalid"
    assert decodes.count(forged) == 3
    with pytest.raises(Problem):
        await verifier.decode(good, typ="idv")  # remembered as an access token only


async def test_the_memory_is_bounded(key: Ed25519PrivateKey) -> None:
    verifier = TokenVerifier(KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD, cache_size=3)
    tokens = [signed(key, sub=f"u{i}") for i in range(10)]
    for token in tokens:
        assert (await verifier.principal(token)).user_id == jwt.decode(
            token, options={"verify_signature": False}
        )["sub"]
    assert len(verifier._verified) <= 3
    off = TokenVerifier(KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD, cache_size=0)
    await off.principal(tokens[0])
    assert off._verified == {}
