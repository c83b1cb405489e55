"""common.idv: an identity-verification token is accepted only for its person, purpose, object."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import KeySet, TokenVerifier
from common.errors import Problem
from common.idv import check_verification_token

ISSUER, AUDIENCE = "voucher-identity", "voucher-platform"
KEY = Ed25519PrivateKey.generate()
KID = "test-key"


def verifier() -> TokenVerifier:
    return TokenVerifier(KeySet(keys={KID: KEY.public_key()}), issuer=ISSUER, audience=AUDIENCE)


def idv_token(key: Ed25519PrivateKey = KEY, kid: str = KID, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "jti": "verification-1",
        "typ": "idv",
        "org": "org-1",
        "purpose": "sign_contract",
        "obj": "contract-1",
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


async def refused(token: str, **binding: Any) -> Problem:
    args: dict[str, Any] = {"user_id": "user-1", "purpose": "sign_contract", "object_id": "contract-1"}
    args.update(binding)
    with pytest.raises(Problem) as caught:
        await check_verification_token(verifier(), token, **args)
    assert caught.value.status == 403
    return caught.value


async def test_a_token_for_this_person_purpose_and_object_is_accepted() -> None:
    claims = await check_verification_token(
        verifier(), idv_token(), user_id="user-1", purpose="sign_contract", object_id="contract-1"
    )
    assert claims["jti"] == "verification-1" and claims["org"] == "org-1"
    # With the organisation named too.
    await check_verification_token(
        verifier(),
        idv_token(),
        user_id="user-1",
        purpose="sign_contract",
        object_id="contract-1",
        org_id="org-1",
    )


async def test_a_seal_token_is_bound_to_no_object() -> None:
    token = idv_token(purpose="seal", obj=None)
    claims = await check_verification_token(verifier(), token, user_id="user-1", purpose="seal")
    assert claims["purpose"] == "seal"
    # ... so it cannot be spent on a contract, and a contract's token cannot make a seal.
    assert (await refused(token, purpose="sign_contract")).code == "verification_invalid"
    assert (await refused(idv_token(), purpose="seal", object_id=None)).code == "verification_invalid"


@pytest.mark.parametrize(
    "binding",
    [
        {"user_id": "user-2"},
        {"purpose": "seal"},
        {"object_id": "contract-2"},
        {"object_id": None},
        {"org_id": "org-2"},
    ],
)
async def test_a_token_bound_to_something_else_is_refused(binding: dict[str, Any]) -> None:
    problem = await refused(idv_token(), **binding)
    assert problem.code == "verification_invalid"
    assert problem.detail == "人脸认证结果无效，请重新进行人脸认证"


async def test_an_expired_token_says_so() -> None:
    past = int(time.time()) - 3600
    problem = await refused(idv_token(iat=past, exp=past + 600))
    assert problem.code == "verification_expired"
    assert "过期" in problem.detail


@pytest.mark.parametrize(
    "make",
    [
        lambda: idv_token(typ="access"),  # an access token is not a face check
        lambda: idv_token(aud="someone-else"),
        lambda: idv_token(iss="someone-else"),
        lambda: idv_token(key=Ed25519PrivateKey.generate()),  # forged: right kid, wrong key
        lambda: idv_token(key=Ed25519PrivateKey.generate(), kid="unknown"),
        lambda: jwt.encode(
            {"sub": "user-1", "typ": "idv", "purpose": "sign_contract", "obj": "contract-1"},
            None,
            algorithm="none",
        ),
        lambda: "not-a-jwt",
        lambda: "",
    ],
    ids=["access-token", "audience", "issuer", "forged", "unknown-key", "alg-none", "garbage", "empty"],
)
async def test_anything_but_a_genuine_idv_token_is_refused_with_403(make: Callable[[], str]) -> None:
    # made when the test runs: a token made at collection expires before a long run reaches it
    problem = await refused(make())
    assert problem.code == "verification_invalid"  # never a 401 that would sign the user out
