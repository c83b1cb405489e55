"""人脸认证 with Tencent Cloud FaceID, against a fake of its API on 127.0.0.1 (the real SDK):
start → the vendor's page → the vendor's result → the verification passes only for the person
it was started for, and identity issues its token as it does for the simulated check."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.idv import check_verification_token
from common.testing.api_client import ApiDriver, random_phone
from common.testing.vendor_fakes import FakeVendor, Reply, Seen, closed_port

from .conftest import LEGAL_REP, Flows, make_resident_id
from .test_verifications import URL, jwks_verifier

pytestmark = pytest.mark.broker

PORTAL = "https://portal.example.cn/verify/{verification_id}"
RETURN = "https://identity.example.cn/api/v1/identity-verifications/{verification_id}/return"


class FaceId:
    """What the fake FaceID answers: DetectAuth gives BizToken ``bt-<n>``; GetDetectInfoEnhanced
    gives ``self.results[biz_token]`` (the Text of the answer), pending when there is none."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any] | str] = {}
        self.started = 0

    def __call__(self, request: Seen) -> Reply:
        body = request.json()
        if request.action == "DetectAuth":
            self.started += 1
            token = f"bt-{self.started}"
            return Reply(
                200,
                {
                    "Response": {
                        "Url": f"https://h5.faceid.qq.com/api/web/login?token={token}",
                        "BizToken": token,
                        "RequestId": f"r-{self.started}",
                    }
                },
            )
        assert request.action == "GetDetectInfoEnhanced"
        result = self.results.get(body["BizToken"])
        if isinstance(result, str):  # a vendor error code
            return Reply(200, {"Response": {"Error": {"Code": result, "Message": "x"}, "RequestId": "r"}})
        text = result or {"ErrCode": None, "ErrMsg": None}
        return Reply(200, {"Response": {"Text": text, "RequestId": "r-result"}})

    def finish(self, token: str, *, err: int = 0, name: str, id_number: str, extra: str) -> None:
        self.results[token] = {
            "ErrCode": err,
            "ErrMsg": "成功" if err == 0 else "比对不通过",
            "Name": name,
            "IdCard": id_number,
            "Extra": extra,
            "LiveStatus": err,
            "Comparestatus": err,
            "Sim": "92.1",
        }


def face_settings(endpoint: str, vendor: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """identity's settings for a face vendor at ``endpoint``: no retry waits, no SMS limits."""
    return {
        "faceid_endpoint": endpoint,
        "face_redirect_url": RETURN,
        "vendor_retry_wait_seconds": 0,
        "sms_resend_seconds": 0,
        "sms_daily_cap_per_phone": 1000,
        "sms_daily_cap_per_ip": 10_000,
        **vendor,
        **overrides,
    }


def faceid_settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    tencent = {
        "face_verifier": "tencent",
        "tencent_secret_id": "AKID-face-id",
        "tencent_secret_key": "face-secret-key",
        "tencent_faceid_rule_id": "2",
    }
    return face_settings(endpoint, tencent, **overrides)


@pytest_asyncio.fixture
async def faceid(fake_vendor: FakeVendor) -> FaceId:
    answer = FaceId()
    fake_vendor.answer(answer)
    return answer


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, fake_vendor: FakeVendor, faceid: FaceId) -> FastAPI:
    return await make_identity(**faceid_settings(fake_vendor.endpoint, face_portal_url=PORTAL))


async def start(
    client: httpx.AsyncClient, who: Any, purpose: str, object_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": purpose}
    if object_id:
        body["object_id"] = object_id
    r = await client.post(URL, json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def check(client: httpx.AsyncClient, who: Any, verification_id: str) -> httpx.Response:
    return await client.post(f"{URL}/{verification_id}/check", headers=who.headers)


async def test_a_check_passes_for_the_right_person_and_yields_the_bound_token(
    client: httpx.AsyncClient, fake_vendor: FakeVendor, faceid: FaceId, owner_id: Any
) -> None:
    owner, org, id_number = owner_id
    started = await start(client, owner, "sign_contract", "contract-7")
    vid = started["verification_id"]
    assert started["state"] == "pending"
    assert started["url"] == "https://h5.faceid.qq.com/api/web/login?token=bt-1"

    [detect] = fake_vendor.seen
    assert detect.action == "DetectAuth" and detect.headers["x-tc-version"] == "2018-03-01"
    assert detect.json() == {
        "RuleId": "2",
        "IdCard": id_number,
        "Name": LEGAL_REP,
        "Extra": vid,
        "RedirectUrl": RETURN.replace("{verification_id}", vid),
    }
    assert "AKID-face-id" in detect.headers["authorization"]

    # The person has not finished on the phone yet: it stays pending.
    r = await check(client, owner, vid)
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["token"] is None
    result_request = fake_vendor.seen[-1]
    assert result_request.action == "GetDetectInfoEnhanced"
    assert result_request.json() == {"BizToken": "bt-1", "RuleId": "2", "InfoType": "1"}

    faceid.finish("bt-1", name=LEGAL_REP, id_number=id_number, extra=vid)
    r = await check(client, owner, vid)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "passed" and body["expires_in"] > 0
    verifier = await jwks_verifier(client)
    user_id = (await client.get("/api/v1/me", headers=owner.headers)).json()["user"]["id"]
    claims = await check_verification_token(
        verifier,
        body["token"],
        user_id=user_id,
        purpose="sign_contract",
        object_id="contract-7",
        org_id=org["id"],
    )
    assert claims["jti"] == vid
    # Read again (as the simulated flow does): passed, with a token; asking again changes nothing.
    again = (await client.get(f"{URL}/{vid}", headers=owner.headers)).json()
    assert again["state"] == "passed" and again["token"]
    asked = len(fake_vendor.seen)
    assert (await check(client, owner, vid)).json()["state"] == "passed"
    assert len(fake_vendor.seen) == asked  # decided: the vendor is not asked again


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        ({"err": 0, "name": "李四", "id_number": "other"}, "another person's ID number"),
        ({"err": 0, "name": "李四", "id_number": None}, "another person's name"),
        ({"err": 0, "name": LEGAL_REP, "id_number": None, "extra": "another-verification"}, "another check"),
        ({"err": 1001, "name": LEGAL_REP, "id_number": None}, "the face did not match"),
        ("InvalidParameterValue.BizTokenExpired", "expired"),
    ],
)
async def test_a_result_for_another_person_or_a_failed_one_fails_it_for_good(
    client: httpx.AsyncClient, faceid: FaceId, owner_id: Any, outcome: dict[str, Any] | str, why: str
) -> None:
    owner, _org, id_number = owner_id
    vid = (await start(client, owner, "seal"))["verification_id"]
    token = f"bt-{faceid.started}"
    if isinstance(outcome, str):
        faceid.results[token] = outcome
    else:
        if outcome["id_number"] is None:
            outcome["id_number"] = id_number
        if outcome["id_number"] == "other":
            outcome["id_number"] = make_resident_id("19900101")
        faceid.finish(token, **{"extra": vid, **outcome})
    r = await check(client, owner, vid)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "failed" and r.json()["token"] is None, why
    # Final: the right result afterwards does not turn it into a pass.
    faceid.finish(token, name=LEGAL_REP, id_number=id_number, extra=vid)
    assert (await check(client, owner, vid)).json()["state"] == "failed"
    assert (await client.get(f"{URL}/{vid}", headers=owner.headers)).json()["token"] is None


async def test_the_phone_returns_to_identity_which_asks_the_vendor_and_sends_it_to_the_portal(
    client: httpx.AsyncClient, faceid: FaceId, owner_id: Any, flows: Flows
) -> None:
    owner, _org, id_number = owner_id
    vid = (await start(client, owner, "seal"))["verification_id"]
    faceid.finish("bt-1", name=LEGAL_REP, id_number=id_number, extra=vid)
    # No platform token on the phone; the token in the address is not believed, the vendor is asked.
    r = await client.get(f"/api/v1/identity-verifications/{vid}/return", params={"token": "forged"})
    assert r.status_code == 303
    assert r.headers["location"] == PORTAL.replace("{verification_id}", vid)
    assert (await client.get(f"{URL}/{vid}", headers=owner.headers)).json()["state"] == "passed"
    r = await client.get("/api/v1/identity-verifications/00000000-0000-0000-0000-000000000000/return")
    assert r.status_code == 404 and r.json()["code"] == "verification_not_found"

    # Only its person may ask for the result of a check.
    other, _ = await flows.certified()
    r = await check(client, other, vid)
    assert r.status_code == 404 and r.json()["code"] == "verification_not_found"


async def test_an_agents_check_is_bound_to_the_agent(
    client: httpx.AsyncClient, api: ApiDriver, fake_vendor: FakeVendor, faceid: FaceId, owner_id: Any
) -> None:
    owner, _org, legal_rep_id = owner_id
    phone, agent_id = random_phone(), make_resident_id("19920202")
    put = await client.put(
        "/api/v1/me/organization/agent",
        json={"name": "李经办", "id_number": agent_id, "id_type": "resident_id", "phone": phone},
        headers=owner.headers,
    )
    assert put.status_code == 200, put.text
    agent = await api.sms_login(phone)
    vid = (await start(client, agent, "sign_contract", "contract-9"))["verification_id"]
    assert fake_vendor.seen[-1].json()["IdCard"] == agent_id
    assert fake_vendor.seen[-1].json()["Name"] == "李经办"
    # The legal representative's face does not pass the agent's check.
    faceid.finish("bt-1", name=LEGAL_REP, id_number=legal_rep_id, extra=vid)
    assert (await check(client, agent, vid)).json()["state"] == "failed"

    vid = (await start(client, agent, "sign_contract", "contract-9"))["verification_id"]
    faceid.finish("bt-2", name="李经办", id_number=agent_id, extra=vid)
    body = (await check(client, agent, vid)).json()
    assert body["state"] == "passed" and body["token"]


async def test_without_the_portal_address_the_return_answers_the_state(
    make_identity: Any, fake_vendor: FakeVendor, faceid: FaceId, flows: Flows
) -> None:
    app = await make_identity(**faceid_settings(fake_vendor.endpoint))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        id_number = make_resident_id()
        owner, _org = await flows.certified(legal_rep_name=LEGAL_REP, legal_rep_id_number=id_number)
        vid = (await start(c, owner, "seal"))["verification_id"]
        r = await c.get(f"/api/v1/identity-verifications/{vid}/return")
        assert r.status_code == 200 and r.json() == {"verification_id": vid, "state": "pending"}
        faceid.finish("bt-1", name=LEGAL_REP, id_number=id_number, extra=vid)
        r = await c.get(f"/api/v1/identity-verifications/{vid}/return")
        assert r.json() == {"verification_id": vid, "state": "passed"}
        assert "token" not in r.json()


async def test_a_vendor_outage_is_retried_then_answers_503(make_identity: Any, flows: Flows) -> None:
    app = await make_identity(**faceid_settings(f"127.0.0.1:{closed_port()}", vendor_attempts=2))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        r = await c.post(URL, json={"purpose": "seal"}, headers=owner.headers)
        assert r.status_code == 503 and r.json()["code"] == "face_verification_unavailable"


async def test_a_refused_account_is_a_clear_503(
    make_identity: Any, fake_vendor: FakeVendor, flows: Flows
) -> None:
    fake_vendor.answer(
        Reply(
            200,
            {
                "Response": {
                    "Error": {"Code": "AuthFailure.SecretIdNotFound", "Message": "x"},
                    "RequestId": "r",
                }
            },
        )
    )
    app = await make_identity(**faceid_settings(fake_vendor.endpoint))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        r = await c.post(URL, json={"purpose": "seal"}, headers=owner.headers)
        assert r.status_code == 503 and r.json()["code"] == "face_verification_misconfigured"
        assert len(fake_vendor.seen) == 1  # a refusal is not tried again
