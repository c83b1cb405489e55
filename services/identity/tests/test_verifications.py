"""人脸认证 through identity's API: start, the simulated decision, and the bound token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.auth import KeySet, TokenVerifier
from common.errors import Problem
from common.idv import check_verification_token
from common.testing.api_client import ApiDriver, Session, random_phone

pytestmark = pytest.mark.broker

URL = "/api/v1/me/identity-verifications"


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(**relaxed_sms)


async def start(
    client: httpx.AsyncClient, session: Session, purpose: str, object_id: str | None = None
) -> str:
    r = await client.post(URL, json={"purpose": purpose, "object_id": object_id}, headers=session.headers)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pending"
    return str(r.json()["verification_id"])


async def decide(client: httpx.AsyncClient, verification_id: str, outcome: str) -> httpx.Response:
    return await client.post(f"/api/v1/dev/identity-verifications/{verification_id}/{outcome}")


async def jwks_verifier(client: httpx.AsyncClient) -> TokenVerifier:
    """What contracts will do: verify with identity's published keys."""
    keys = KeySet()
    for jwk in (await client.get("/.well-known/jwks.json")).json()["keys"]:
        keys.add(jwk["kid"], jwt.PyJWK(jwk).key)
    return TokenVerifier(keys, issuer="voucher-identity", audience="voucher-platform")


async def test_a_passed_contract_check_yields_a_token_bound_to_person_and_contract(
    flows: Any, client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    owner, org = await flows.certified()
    verification_id = await start(client, owner, "sign_contract", "contract-42")
    r = await client.get(f"{URL}/{verification_id}", headers=owner.headers)
    assert r.status_code == 200
    assert r.json() == {
        "verification_id": verification_id,
        "purpose": "sign_contract",
        "object_id": "contract-42",
        "state": "pending",
        "url": None,  # simulated: no vendor page
        "token": None,
        "expires_in": None,
    }
    assert (await decide(client, verification_id, "pass")).status_code == 200

    body = (await client.get(f"{URL}/{verification_id}", headers=owner.headers)).json()
    assert body["state"] == "passed"
    ttl = identity_app.state.settings.verification_token_ttl_seconds
    assert 0 < body["expires_in"] <= ttl
    verifier = await jwks_verifier(client)
    user_id = (await client.get("/api/v1/me", headers=owner.headers)).json()["user"]["id"]
    claims = await check_verification_token(
        verifier,
        body["token"],
        user_id=user_id,
        purpose="sign_contract",
        object_id="contract-42",
        org_id=org["id"],
    )
    assert claims["typ"] == "idv" and claims["jti"] == verification_id
    # Not for another contract, not for a seal.
    for purpose, object_id in (("sign_contract", "contract-43"), ("seal", None)):
        with pytest.raises(Problem) as caught:
            await check_verification_token(
                verifier, body["token"], user_id=user_id, purpose=purpose, object_id=object_id
            )
        assert caught.value.status == 403 and caught.value.code == "verification_invalid"

    # Each read re-issues a token, but none outlives the check's own lifetime.
    await asyncio.sleep(1.1)
    again = (await client.get(f"{URL}/{verification_id}", headers=owner.headers)).json()
    first_exp = jwt.decode(body["token"], options={"verify_signature": False})["exp"]
    second_exp = jwt.decode(again["token"], options={"verify_signature": False})["exp"]
    assert second_exp <= first_exp + 1
    assert again["expires_in"] < body["expires_in"] + 1


async def test_a_seal_check_is_for_the_owner_of_a_certified_organisation(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, _org = await flows.certified()
    verification_id = await start(client, owner, "seal")
    await decide(client, verification_id, "pass")
    body = (await client.get(f"{URL}/{verification_id}", headers=owner.headers)).json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["purpose"] == "seal" and claims["obj"] is None

    # The agent may sign contracts but not make the seal.
    phone = random_phone()
    put = await client.put(
        "/api/v1/me/organization/agent",
        json={"name": "李经办", "id_number": "H12345678", "id_type": "hk_macao_tw_permit", "phone": phone},
        headers=owner.headers,
    )
    assert put.status_code == 200, put.text
    agent = await api.sms_login(phone)
    r = await client.post(URL, json={"purpose": "seal"}, headers=agent.headers)
    assert r.status_code == 403 and r.json()["code"] == "owner_required"
    await start(client, agent, "sign_contract", "contract-1")

    # An organisation that is not certified has nothing to seal or sign.
    newcomer = await api.register()
    r = await client.post(URL, json={"purpose": "seal"}, headers=newcomer.headers)
    assert r.status_code == 403 and r.json()["code"] == "certification_required"


async def test_the_object_is_required_for_contracts_only(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    r = await client.post(URL, json={"purpose": "sign_contract"}, headers=owner.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "object_id", "message": "签署合同的人脸认证须指明合同编号"}]
    r = await client.post(URL, json={"purpose": "seal", "object_id": "x"}, headers=owner.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "object_id"
    r = await client.post(URL, json={"purpose": "login"}, headers=owner.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "purpose"
    r = await client.post(
        URL, json={"purpose": "sign_contract", "object_id": "../x y"}, headers=owner.headers
    )
    assert r.status_code == 422


async def test_only_the_person_who_started_it_sees_it(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    other, _ = await flows.certified()
    verification_id = await start(client, owner, "sign_contract", "contract-1")
    await decide(client, verification_id, "pass")
    r = await client.get(f"{URL}/{verification_id}", headers=other.headers)
    assert r.status_code == 404 and r.json()["code"] == "verification_not_found"
    unknown = await client.get(f"{URL}/00000000-0000-0000-0000-000000000000", headers=other.headers)
    assert unknown.json()["code"] == r.json()["code"] and unknown.json()["detail"] == r.json()["detail"]
    assert (await client.get(f"{URL}/{verification_id}")).status_code == 401


async def test_a_failed_check_yields_no_token_and_is_final(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    verification_id = await start(client, owner, "sign_contract", "contract-1")
    assert (await decide(client, verification_id, "fail")).json()["state"] == "failed"
    body = (await client.get(f"{URL}/{verification_id}", headers=owner.headers)).json()
    assert body["state"] == "failed" and body["token"] is None
    r = await decide(client, verification_id, "pass")
    assert r.status_code == 409 and r.json()["code"] == "verification_not_pending"
    assert (await client.get(f"{URL}/{verification_id}", headers=owner.headers)).json()["state"] == "failed"
    r = await decide(client, "00000000-0000-0000-0000-000000000000", "pass")
    assert r.status_code == 404


async def test_a_passed_check_expires(make_identity: Any, relaxed_sms: dict[str, Any], flows: Any) -> None:
    app = await make_identity(verification_token_ttl_seconds=1, **relaxed_sms)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        verification_id = await start(c, owner, "seal")
        await decide(c, verification_id, "pass")
        await asyncio.sleep(1.2)
        r = await c.get(f"{URL}/{verification_id}", headers=owner.headers)
        assert r.status_code == 403
        assert r.json()["code"] == "verification_expired"
        assert r.json()["detail"] == "人脸认证结果已过期，请重新进行人脸认证"
