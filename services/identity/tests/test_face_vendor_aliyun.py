"""人脸认证 with Aliyun's real-person verification (cloudauth 2019-03-07, H5 flow), against a
fake of its API on 127.0.0.1 (the real SDK; the fake checks each request's ACS3 signature,
action and parameters): start → the vendor's page → the vendor's result → the verification
passes only for the person it was started for, and identity issues its token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.idv import check_verification_token
from common.testing.api_client import ApiDriver, random_phone
from common.testing.vendor_fakes import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    CERTIFY_URL,
    Cloudauth,
    FakeVendor,
    Reply,
    closed_port,
)

from .conftest import Flows, make_resident_id
from .test_face_vendor import LEGAL_REP, PORTAL, RETURN, check, face_settings, start
from .test_verifications import URL, jwks_verifier

pytestmark = pytest.mark.broker

SCENE = "1000000006"


def cloudauth_settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    aliyun = {
        "face_verifier": "aliyun",
        "aliyun_access_key_id": ALIYUN_KEY_ID,
        "aliyun_access_key_secret": ALIYUN_SECRET,
        "aliyun_face_scene_id": SCENE,
    }
    return face_settings(endpoint, aliyun, **overrides)


@pytest_asyncio.fixture
async def cloudauth(fake_vendor: FakeVendor) -> Cloudauth:
    answer = Cloudauth()
    fake_vendor.answer(answer)
    return answer


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, fake_vendor: FakeVendor, cloudauth: Cloudauth) -> FastAPI:
    return await make_identity(**cloudauth_settings(fake_vendor.endpoint, face_portal_url=PORTAL))


async def test_a_check_passes_for_the_person_it_was_started_for_and_yields_the_bound_token(
    client: httpx.AsyncClient, fake_vendor: FakeVendor, cloudauth: Cloudauth, owner_id: Any
) -> None:
    owner, org, id_number = owner_id
    started = await start(client, owner, "sign_contract", "contract-7")
    vid = started["verification_id"]
    assert started["state"] == "pending"
    assert started["url"] == CERTIFY_URL.format("c-1")

    [init] = fake_vendor.seen
    assert init.action == "InitFaceVerify" and init.method == "POST"
    assert init.query == {
        "SceneId": SCENE,
        "OuterOrderNo": vid.replace("-", ""),
        "ProductCode": "ID_PRO",
        "CertType": "IDENTITY_CARD",
        "CertName": LEGAL_REP,
        "CertNo": id_number,
        "MetaInfo": '{"deviceType":"h5"}',
        "CertifyUrlType": "H5",
        "CertifyUrlStyle": "L",
        "ReturnUrl": RETURN.replace("{verification_id}", vid),
    }
    assert init.aliyun_signed_by(ALIYUN_KEY_ID, ALIYUN_SECRET)

    # A reload shows the vendor's page again.
    shown = (await client.get(f"{URL}/{vid}", headers=owner.headers)).json()
    assert shown["state"] == "pending" and shown["url"] == CERTIFY_URL.format("c-1")

    # The person has not finished on the phone yet: it stays pending.
    r = await check(client, owner, vid)
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["token"] is None
    describe = fake_vendor.seen[-1]
    assert describe.action == "DescribeFaceVerify"
    assert describe.query == {"CertifyId": "c-1", "SceneId": SCENE}

    cloudauth.results["c-1"] = ("T", "200")
    r = await check(client, owner, vid)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "passed" and body["expires_in"] > 0 and body["url"] is None
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
    asked = len(fake_vendor.seen)
    assert (await check(client, owner, vid)).json()["state"] == "passed"
    assert len(fake_vendor.seen) == asked  # decided: the vendor is not asked again


@pytest.mark.parametrize(
    ("sub_code", "why"),
    [("204", "the face did not match"), ("201", "name and ID do not match"), ("205", "liveness risk")],
)
async def test_a_failed_check_fails_it_for_good(
    client: httpx.AsyncClient, cloudauth: Cloudauth, owner_id: Any, sub_code: str, why: str
) -> None:
    owner, _org, _id_number = owner_id
    vid = (await start(client, owner, "seal"))["verification_id"]
    cloudauth.results["c-1"] = ("F", sub_code)
    r = await check(client, owner, vid)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "failed" and r.json()["token"] is None, why
    assert r.json()["url"] is None
    cloudauth.results["c-1"] = ("T", "200")  # final: a pass afterwards changes nothing
    assert (await check(client, owner, vid)).json()["state"] == "failed"


async def test_a_pass_for_the_person_the_agent_no_longer_is_fails(
    client: httpx.AsyncClient, api: ApiDriver, fake_vendor: FakeVendor, cloudauth: Cloudauth, owner_id: Any
) -> None:
    """Aliyun does not name the person in its result: the check passes only while the person
    it was started for is still the one the verification is bound to."""
    owner, _org, _legal_rep_id = owner_id
    phone, agent_id = random_phone(), make_resident_id("19920202")
    agent_body = {"name": "李经办", "id_number": agent_id, "id_type": "resident_id", "phone": phone}
    put = await client.put("/api/v1/me/organization/agent", json=agent_body, headers=owner.headers)
    assert put.status_code == 200, put.text
    agent = await api.sms_login(phone)
    vid = (await start(client, agent, "sign_contract", "contract-9"))["verification_id"]
    assert fake_vendor.seen[-1].query["CertNo"] == agent_id
    assert fake_vendor.seen[-1].query["CertName"] == "李经办"

    # The owner corrects the agent's ID number while the check is open on the phone.
    corrected = {**agent_body, "id_number": make_resident_id("19930303")}
    put = await client.put("/api/v1/me/organization/agent", json=corrected, headers=owner.headers)
    assert put.status_code == 200, put.text
    cloudauth.results["c-1"] = ("T", "200")
    r = await check(client, agent, vid)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "failed" and r.json()["token"] is None


async def test_the_phone_returns_to_identity_which_asks_the_vendor_and_sends_it_to_the_portal(
    client: httpx.AsyncClient, cloudauth: Cloudauth, owner_id: Any
) -> None:
    owner, _org, _id_number = owner_id
    vid = (await start(client, owner, "seal"))["verification_id"]
    cloudauth.results["c-1"] = ("T", "200")
    # Aliyun appends its own parameters; none is believed, the vendor is asked.
    r = await client.get(
        f"/api/v1/identity-verifications/{vid}/return", params={"certifyId": "forged", "passed": "200"}
    )
    assert r.status_code == 303 and r.headers["location"] == PORTAL.replace("{verification_id}", vid)
    assert (await client.get(f"{URL}/{vid}", headers=owner.headers)).json()["state"] == "passed"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            Reply(200, {"Code": "404", "Message": "认证场景配置不存在", "RequestId": "r"}),
            "face_verification_misconfigured",
        ),
        (Reply(200, {"Code": "412", "Message": "欠费", "RequestId": "r"}), "face_verification_misconfigured"),
        (
            Reply(404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "x", "RequestId": "r"}),
            "face_verification_misconfigured",
        ),
        (Reply(200, {"Code": "499", "Message": "?", "RequestId": "r"}), "face_verification_unavailable"),
    ],
)
async def test_a_refusal_of_the_vendor_is_a_clear_503_and_not_tried_again(
    make_identity: Any, fake_vendor: FakeVendor, flows: Flows, answer: Reply, code: str
) -> None:
    fake_vendor.answer(answer)
    app = await make_identity(**cloudauth_settings(fake_vendor.endpoint))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        r = await c.post(URL, json={"purpose": "seal"}, headers=owner.headers)
        assert r.status_code == 503 and r.json()["code"] == code
        assert len(fake_vendor.seen) == 1


async def test_a_wrong_secret_is_refused_by_the_signature_check(
    make_identity: Any, fake_vendor: FakeVendor, cloudauth: Cloudauth, flows: Flows
) -> None:
    app = await make_identity(**cloudauth_settings(fake_vendor.endpoint, aliyun_access_key_secret="wrong"))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        r = await c.post(URL, json={"purpose": "seal"}, headers=owner.headers)
        assert r.status_code == 503 and r.json()["code"] == "face_verification_misconfigured"
        assert cloudauth.started == 0


@pytest.mark.parametrize("down", ["closed", "500", "system error in the body"])
async def test_a_vendor_outage_is_retried_then_answers_503(
    make_identity: Any, fake_vendor: FakeVendor, flows: Flows, down: str
) -> None:
    endpoint = fake_vendor.endpoint
    if down == "closed":
        endpoint = f"127.0.0.1:{closed_port()}"
    elif down == "500":
        fake_vendor.answer(Reply(500, {"Code": "InternalError", "Message": "x", "RequestId": "r"}))
    else:
        fake_vendor.answer(Reply(200, {"Code": "500", "Message": "系统错误", "RequestId": "r"}))
    app = await make_identity(**cloudauth_settings(endpoint, vendor_attempts=2))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        flows.client, flows.api = c, ApiDriver(c)
        owner, _org = await flows.certified()
        r = await c.post(URL, json={"purpose": "seal"}, headers=owner.headers)
        assert r.status_code == 503 and r.json()["code"] == "face_verification_unavailable"
        if down != "closed":
            assert len(fake_vendor.seen) == 2  # tried again once, then 503
