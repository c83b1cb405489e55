"""指定经办人 and 支付认证 through identity's API."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI
from stdnum.cn import ric

from common.testing.api_client import ApiDriver, random_phone

pytestmark = pytest.mark.broker

AGENT_URL = "/api/v1/me/organization/agent"
BANK_URL = "/api/v1/me/organization/bank-account"


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(**relaxed_sms)


def resident_id(seq: int = 123) -> str:
    body = f"45030219900704{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def agent_body(phone: str, name: str = "李经办", **extra: Any) -> dict[str, Any]:
    return {"name": name, "id_number": resident_id(), "phone": phone, **extra}


# --- agents ------------------------------------------------------------------------------------


async def test_the_owner_designates_an_agent_who_signs_in_to_the_organisation(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, org = await flows.certified()
    phone = random_phone()
    r = await client.put(AGENT_URL, json=agent_body(phone), headers=owner.headers)
    assert r.status_code == 200, r.text
    agent = r.json()
    assert agent["name"] == "李经办"
    assert agent["phone"] == masked(phone)
    assert agent["id_type"] == "resident_id"
    assert agent["id_number"] == resident_id()[:6] + "********" + resident_id()[-4:]
    assert (await client.get(AGENT_URL, headers=owner.headers)).json() == agent
    detail = (await client.get("/api/v1/me/organization", headers=owner.headers)).json()
    assert detail["agent"] == agent

    # That phone signs in to the same organisation as its agent.
    signed_in = await api.sms_login(phone)
    assert signed_in.body["user"]["role"] == "agent"
    assert signed_in.body["organization"]["id"] == org["id"]
    # Its token names the agent: the enterprise's contact on the orders it submits (双方接洽).
    claims = jwt.decode(signed_in.access_token, options={"verify_signature": False})
    assert (claims["name"], claims["phone"]) == ("李经办", phone)
    me = (await client.get("/api/v1/me", headers=signed_in.headers)).json()
    assert me["user"]["role"] == "agent" and me["organization"]["capabilities"] == ["enterprise"]
    # The agent sees the organisation, but the owner's settings stay the owner's.
    assert (await client.get("/api/v1/me/organization", headers=signed_in.headers)).status_code == 200
    for method, url, body in [
        ("GET", AGENT_URL, None),
        ("PUT", AGENT_URL, agent_body(random_phone())),
        ("DELETE", AGENT_URL, None),
        ("GET", BANK_URL, None),
        ("PUT", BANK_URL, bank_body(org)),
    ]:
        r = await client.request(method, url, json=body, headers=signed_in.headers)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["code"] == "owner_required"
    r = await flows.certify(signed_in)
    assert r.status_code == 403 and r.json()["code"] == "owner_required"


async def test_replacing_the_agent_ends_the_previous_agents_access(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, _org = await flows.certified()
    first_phone, second_phone = random_phone(), random_phone()
    assert (
        await client.put(AGENT_URL, json=agent_body(first_phone), headers=owner.headers)
    ).status_code == 200
    first = await api.sms_login(first_phone)

    r = await client.put(AGENT_URL, json=agent_body(second_phone, "王经办"), headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["phone"] == masked(second_phone) and r.json()["name"] == "王经办"
    # The previous agent's session is over and the phone no longer signs in.
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": first.refresh_token})
    assert refresh.status_code == 401
    code = await api.sms_code(first_phone, "login")
    captcha_id, answer = await api.captcha()
    login = {"phone": first_phone, "sms_code": code, "captcha_id": captcha_id, "captcha_answer": answer}
    gone = await client.post("/api/v1/auth/login/sms", json=login)
    assert gone.status_code == 404 and gone.json()["code"] == "phone_not_registered"
    second = await api.sms_login(second_phone)
    assert second.body["user"]["role"] == "agent"
    # A freed phone may now register an account of its own.
    await api.register(first_phone)


async def test_correcting_the_same_agent_keeps_their_session(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, _org = await flows.certified()
    phone = random_phone()
    await client.put(AGENT_URL, json=agent_body(phone, "李经办"), headers=owner.headers)
    agent = await api.sms_login(phone)
    r = await client.put(
        AGENT_URL,
        json=agent_body(phone, "李正确", id_type="hk_macao_tw_permit", id_number="M12345678"),
        headers=owner.headers,
    )
    assert r.status_code == 200
    assert r.json()["name"] == "李正确" and r.json()["id_type"] == "hk_macao_tw_permit"
    await api.refresh(agent)  # still signed in


async def test_a_phone_of_another_account_is_409_and_changes_nothing(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, _org = await flows.certified()
    someone = await api.register()
    current = random_phone()
    await client.put(AGENT_URL, json=agent_body(current), headers=owner.headers)
    before = (await client.get(AGENT_URL, headers=owner.headers)).json()
    r = await client.put(AGENT_URL, json=agent_body(someone.phone), headers=owner.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "phone_taken"
    assert r.json()["detail"] == "该手机号已被其他账号使用，请更换经办人手机号"
    assert (await client.get(AGENT_URL, headers=owner.headers)).json() == before
    await api.sms_login(current)  # the current agent is untouched


async def test_bad_agent_details_are_422(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    r = await client.put(AGENT_URL, json=agent_body(owner.phone), headers=owner.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "phone", "message": "经办人手机号不能与当前账号（法人）手机号相同"}
    ]
    bad_id = resident_id()[:17] + ("1" if resident_id()[-1] != "1" else "2")
    r = await client.put(AGENT_URL, json=agent_body(random_phone(), id_number=bad_id), headers=owner.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "id_number", "message": "居民身份证号码校验位不正确"}]
    r = await client.put(AGENT_URL, json=agent_body("12345"), headers=owner.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone"
    r = await client.get(AGENT_URL, headers=owner.headers)
    assert r.status_code == 404 and r.json()["code"] == "agent_not_set"


async def test_removing_the_agent(flows: Any, client: httpx.AsyncClient, api: ApiDriver) -> None:
    owner, _org = await flows.certified()
    phone = random_phone()
    await client.put(AGENT_URL, json=agent_body(phone), headers=owner.headers)
    agent = await api.sms_login(phone)
    r = await client.delete(AGENT_URL, headers=owner.headers)
    assert r.status_code == 204
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": agent.refresh_token})
    ).status_code == 401
    r = await client.get(AGENT_URL, headers=owner.headers)
    assert r.status_code == 404 and r.json()["code"] == "agent_not_set"
    assert (await client.get("/api/v1/me/organization", headers=owner.headers)).json()["agent"] is None
    r = await client.delete(AGENT_URL, headers=owner.headers)
    assert r.status_code == 404 and r.json()["code"] == "agent_not_set"


async def test_an_uncertified_organisation_has_no_agent_nor_bank_account(
    client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner = await api.register()
    for method, url, body in [
        ("PUT", AGENT_URL, agent_body(random_phone())),
        ("GET", AGENT_URL, None),
        ("GET", BANK_URL, None),
        ("PUT", BANK_URL, bank_body({"name": "广西测试制造有限公司"})),
    ]:
        r = await client.request(method, url, json=body, headers=owner.headers)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["code"] == "certification_required"
        assert r.json()["detail"] == "请先完成企业信息认证后再操作"


# --- bank account (支付认证) ----------------------------------------------------------------------


def bank_body(org: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "account_name": org["name"],
        "bank_name": "中国工商银行",
        "bank_region": "广西壮族自治区南宁市",
        "branch_name": "中国工商银行南宁民族大道支行",
        "account_number": "6222 0212 3456 7890 123",
        **extra,
    }


async def test_the_bank_account_is_set_and_announced(
    flows: Any, client: httpx.AsyncClient, events: Any
) -> None:
    owner, org = await flows.certified()
    probe = await events("identity.bank_account_changed")
    r = await client.get(BANK_URL, headers=owner.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "bank_account_not_set"

    r = await client.put(BANK_URL, json=bank_body(org), headers=owner.headers)
    assert r.status_code == 200, r.text
    account = r.json()
    assert account["account_number"] == "6222021234567890123"
    assert account["account_number_masked"] == "**** **** 0123"
    assert (await client.get(BANK_URL, headers=owner.headers)).json() == account
    detail = (await client.get("/api/v1/me/organization", headers=owner.headers)).json()
    assert detail["bank_account_set"] is True

    event, message = await probe.next()
    assert message.message_id == event["event_id"]
    assert event["aggregate_id"] == org["id"]
    assert event["payload"] == {
        "org_id": org["id"],
        "account_name": org["name"],
        "bank_name": "中国工商银行",
        "bank_region": "广西壮族自治区南宁市",
        "branch_name": "中国工商银行南宁民族大道支行",
        "account_number": "6222021234567890123",
    }

    # The same details again change nothing and announce nothing.
    assert (await client.put(BANK_URL, json=bank_body(org), headers=owner.headers)).status_code == 200
    await probe.assert_none()
    # A new account is announced.
    r = await client.put(
        BANK_URL, json=bank_body(org, account_number="450100000123456"), headers=owner.headers
    )
    assert r.status_code == 200
    event, _ = await probe.next()
    assert event["payload"]["account_number"] == "450100000123456"


async def test_the_account_must_be_the_enterprises_own(flows: Any, client: httpx.AsyncClient) -> None:
    owner, org = await flows.certified(name="广西某某（南宁）机械有限公司")
    r = await client.put(BANK_URL, json=bank_body(org, account_name="张三"), headers=owner.headers)
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"][0]["field"] == "account_name"
    assert "广西某某（南宁）机械有限公司" in problem["detail"] and "一致" in problem["detail"]
    assert (await client.get(BANK_URL, headers=owner.headers)).status_code == 404
    # Half-width brackets and spaces name the same enterprise.
    r = await client.put(
        BANK_URL, json=bank_body(org, account_name="广西某某(南宁)机械 有限公司"), headers=owner.headers
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("6222abc123456", "银行账号只能包含数字"),
        ("1234567", "银行账号应为 8 至 30 位数字"),
        ("1" * 31, "银行账号应为 8 至 30 位数字"),
    ],
)
async def test_bad_account_numbers_are_422(
    flows: Any, client: httpx.AsyncClient, number: str, message: str
) -> None:
    owner, org = await flows.certified()
    r = await client.put(BANK_URL, json=bank_body(org, account_number=number), headers=owner.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "account_number", "message": message}]
    assert (await client.get(BANK_URL, headers=owner.headers)).status_code == 404


async def test_one_organisation_never_sees_anothers_bank_account(
    flows: Any, client: httpx.AsyncClient
) -> None:
    owner_a, org_a = await flows.certified()
    owner_b, _org_b = await flows.certified()
    await client.put(BANK_URL, json=bank_body(org_a), headers=owner_a.headers)
    r = await client.get(BANK_URL, headers=owner_b.headers)
    assert r.status_code == 404 and r.json()["code"] == "bank_account_not_set"


async def test_the_region_and_branch_must_be_in_the_reference_data(
    flows: Any, client: httpx.AsyncClient
) -> None:
    owner, org = await flows.certified()
    body = bank_body(org, bank_region="广西南宁", branch_name="中国工商银行火星支行")
    r = await client.put(BANK_URL, json=body, headers=owner.headers)
    assert r.status_code == 422
    problem = r.json()
    # The shipped branch list is partial: a branch it lacks is not refused, the region is.
    assert [e["field"] for e in problem["errors"]] == ["bank_region"]
    assert "开户所在地" in problem["detail"]
    # A branch of another bank, or of another city, is refused too.
    r = await client.put(BANK_URL, json=bank_body(org, bank_name="中国农业银行"), headers=owner.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "branch_name",
            "message": "开户支行“中国工商银行南宁民族大道支行”不属于开户银行“中国农业银行”，请重新选择",
        }
    ]
    r = await client.put(
        BANK_URL, json=bank_body(org, bank_region="广西壮族自治区柳州市"), headers=owner.headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "branch_name"
    assert (await client.get(BANK_URL, headers=owner.headers)).status_code == 404

    # Spaces and widths aside, the account keeps the reference data's spelling.
    r = await client.put(
        BANK_URL, json=bank_body(org, bank_region="广西壮族自治区 南宁市"), headers=owner.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["bank_region"] == "广西壮族自治区南宁市"
