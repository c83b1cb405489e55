"""Token verification (and the memory of verified tokens, which changes no answer),
principals, role checks and service tokens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import common.auth
from common.auth import KeySet, Principal, TokenVerifier, issue_service_token, verify_service_token
from common.errors import Problem

ISS, AUD = "voucher-identity", "voucher-platform"


def signed(key: Ed25519PrivateKey, kid: str = "k1", **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u1",
        "iat": now,
        "exp": now + 60,
        "typ": "access",
        "role": "owner",
    }
    body.update(claims)
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid})


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def verifier(key: Ed25519PrivateKey) -> TokenVerifier:
    return TokenVerifier(KeySet(keys={"k1": key.public_key()}), issuer=ISS, audience=AUD)


async def test_a_valid_token_gives_the_principal(key: Ed25519PrivateKey, verifier: TokenVerifier) -> None:
    p = await verifier.principal(signed(key, org="o1", caps=["enterprise"], sid="s1"))
    assert p == Principal(
        user_id="u1", role="owner", org_id="o1", capabilities=frozenset({"enterprise"}), session_id="s1"
    )


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        ({"exp": int(time.time()) - 60}, "token_expired"),
        ({"aud": "someone-else"}, "token_invalid"),
        ({"iss": "evil"}, "token_invalid"),
        ({"typ": "idv"}, "token_invalid"),
    ],
)
async def test_bad_claims_are_refused(
    key: Ed25519PrivateKey, verifier: TokenVerifier, mutate: dict[str, object], code: str
) -> None:
    with pytest.raises(Problem) as err:
        await verifier.principal(signed(key, **mutate))
    assert err.value.status == 401 and err.value.code == code


async def test_unknown_keys_and_other_algorithms_are_refused(verifier: TokenVerifier) -> None:
    other = Ed25519PrivateKey.generate()
    for token in (
        signed(other),  # right kid, wrong key
        signed(other, kid="nope"),
        jwt.encode({"sub": "u1", "typ": "access"}, None, algorithm="none", headers={"kid": "k1"}),
        jwt.encode({"sub": "u1", "typ": "access"}, "k" * 32, algorithm="HS256", headers={"kid": "k1"}),
        "not.a.token",
    ):
        with pytest.raises(Problem) as err:
            await verifier.principal(token)
        assert err.value.code == "token_invalid"


def test_administrator_passes_every_staff_check_but_not_member_ones() -> None:
    admin = Principal(user_id="a", role="administrator")
    assert admin.has_role("reviewer") and admin.has_role("finance")
    assert not admin.has_role("owner")
    reviewer = Principal(user_id="r", role="reviewer")
    assert (
        reviewer.has_role("reviewer")
        and not reviewer.has_role("finance")
        and not reviewer.has_role("administrator")
    )


def test_service_tokens_round_trip_and_refuse_forgeries() -> None:
    token = issue_service_token("s" * 40, "gateway")
    assert verify_service_token("s" * 40, token) == "gateway"
    with pytest.raises(Problem):
        verify_service_token("t" * 40, token)
    user_token = jwt.encode(
        {"sub": "u1", "aud": "voucher-internal", "exp": int(time.time()) + 60}, "s" * 40, algorithm="HS256"
    )
    with pytest.raises(Problem):
        verify_service_token("s" * 40, user_token)


# --- verified tokens are remembered ------------------------------------------------------------


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
