"""Token verification, principals, role checks and service tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
