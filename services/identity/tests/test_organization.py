"""企业信息认证 through identity's API: the certification, its refusals, and its event."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlmodel import select
from stdnum.cn import ric

from common.testing.api_client import ApiDriver
from identity.domain import organizations as org_domain
from identity.models import Organization

pytestmark = pytest.mark.broker

APPEAL = "该统一社会信用代码已被其他账号认证，如有疑问请联系平台申诉"


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(**relaxed_sms)


async def my_org(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get("/api/v1/me/organization", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_certification_makes_an_enterprise_and_publishes_the_event(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, events: Any, identity_app: FastAPI
) -> None:
    probe = await events("identity.organization_certified")
    session = await api.register(enterprise_name="注册时的名称")
    id_number = flows.certification()["legal_rep_id_number"]
    uscc = flows.certification()["uscc"]
    r = await flows.certify(
        session,
        name="广西南宁精工机械有限公司",
        uscc=" " + uscc.lower()[:9] + " " + uscc.lower()[9:],  # as people type it: spaces, lowercase
        legal_rep_id_number=id_number,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    org = body["organization"]
    assert org["name"] == "广西南宁精工机械有限公司"
    assert org["uscc"] == uscc
    assert org["certified"] is True and org["kind"] == "enterprise"
    assert org["capabilities"] == ["enterprise"]
    assert org["legal_rep_name"] == "张三丰"
    assert org["legal_rep_id_number"] == id_number[:6] + "********" + id_number[-4:]

    # The fresh access token carries the new capability and works at once; it names the owner
    # as the legal representative now (a counterparty's contact on an order, 双方接洽).
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["caps"] == ["enterprise"] and claims["org"] == org["id"]
    assert (claims["name"], claims["phone"]) == ("张三丰", session.phone)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["organization"]["certified"] is True

    detail = await my_org(client, headers)
    assert detail["certified"] is True and detail["certified_at"]
    assert detail["agent"] is None and detail["bank_account_set"] is False

    event, message = await probe.next()
    assert message.message_id == event["event_id"]
    assert event["event_type"] == "identity.organization_certified"
    assert event["aggregate_id"] == org["id"]
    assert event["payload"] == {
        "org_id": org["id"],
        "name": "广西南宁精工机械有限公司",
        "uscc": uscc,
        "kind": "enterprise",
    }

    # At rest the ID number is encrypted, never in clear.
    async with identity_app.state.db.session() as s:
        row = (await s.exec(select(Organization).where(Organization.id == org["id"]))).one()
    assert row.legal_rep_id_enc and id_number not in row.legal_rep_id_enc
    cipher = identity_app.state.identity.cipher
    assert cipher.decrypt(row.legal_rep_id_enc, context=org_domain.LEGAL_REP_ID_CONTEXT) == id_number


async def test_a_provider_certifies_with_a_hong_kong_permit(flows: Any, events: Any) -> None:
    probe = await events("identity.organization_certified")
    _session, org = await flows.certified(
        role="provider", legal_rep_id_type="hk_macao_tw_permit", legal_rep_id_number="H12345678"
    )
    assert org["kind"] == "provider"
    assert org["capabilities"] == ["enterprise"]  # "provider" comes with catalog's onboarding
    assert org["legal_rep_id_type"] == "hk_macao_tw_permit"
    assert "12345" not in org["legal_rep_id_number"]
    event, _ = await probe.next()
    assert event["payload"]["kind"] == "provider"


async def test_a_taken_uscc_is_409_and_changes_nothing(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, events: Any
) -> None:
    probe = await events("identity.organization_certified")
    _first, first_org = await flows.certified()
    assert (await probe.next())[0]["payload"]["org_id"] == first_org["id"]
    second = await api.register()
    code = await api.sms_code(second.phone, "certify")
    r = await flows.certify(second, uscc=first_org["uscc"], sms_code=code)
    assert r.status_code == 409
    problem = r.json()
    assert problem["code"] == "uscc_taken"
    assert problem["detail"] == APPEAL
    assert r.headers["content-type"] == "application/problem+json"
    assert (await my_org(client, second.headers))["certified"] is False
    await probe.assert_none()
    # The refusal did not use the SMS code up: with a USCC of its own, the same code works.
    again = await flows.certify(second, sms_code=code)
    assert again.status_code == 200, again.text


async def test_two_owners_racing_for_one_uscc_one_wins(flows: Any, api: ApiDriver) -> None:
    a, b = await api.register(), await api.register()
    uscc = flows.certification()["uscc"]
    codes = [await api.sms_code(s.phone, "certify") for s in (a, b)]
    results = await asyncio.gather(
        flows.certify(a, uscc=uscc, sms_code=codes[0]), flows.certify(b, uscc=uscc, sms_code=codes[1])
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] == "uscc_taken"


def wrong_check_digit(number: str) -> str:
    good = ric.calc_check_digit(number)
    return number[:17] + ("1" if good != "1" else "2")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"uscc": "91450100MA5L0DEM0X"}, "uscc", "统一社会信用代码校验位不正确"),
        ({"uscc": "9145010012345"}, "uscc", "统一社会信用代码长度应为18位"),
        (
            {"uscc": "91450100MA5L0DEMO1"},
            "uscc",
            "统一社会信用代码包含无效字符“O”（代码中不使用字母I、O、Z、S、V）",
        ),
        ({"legal_rep_id_number": "wrong-check-digit"}, "legal_rep_id_number", "居民身份证号码校验位不正确"),
        (
            {"legal_rep_id_number": "450102198513120011"},
            "legal_rep_id_number",
            "居民身份证号码中的出生日期不正确",
        ),
        ({"agreed": False}, "agreed", "请阅读并勾选同意《统一认证平台认证服务协议》"),
    ],
)
async def test_bad_details_are_422_naming_the_field(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, overrides: dict[str, Any], field: str, message: str
) -> None:
    session = await api.register()
    body = flows.certification(**overrides)
    if body["legal_rep_id_number"] == "wrong-check-digit":
        body["legal_rep_id_number"] = wrong_check_digit(flows.certification()["legal_rep_id_number"])
    r = await flows.certify(session, **body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"] == [{"field": field, "message": message}]
    assert problem["detail"] == message
    assert (await my_org(client, session.headers))["certified"] is False


async def test_every_bad_number_is_reported_at_once(flows: Any, api: ApiDriver) -> None:
    session = await api.register()
    r = await flows.certify(session, uscc="123", legal_rep_id_number="abc", agreed=False)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["agreed", "uscc", "legal_rep_id_number"]
    assert r.json()["detail"].endswith("（共 3 处错误）")


async def test_missing_fields_are_422(client: httpx.AsyncClient, api: ApiDriver) -> None:
    session = await api.register()
    r = await client.post(
        "/api/v1/me/organization/certification", json={"role": "enterprise"}, headers=session.headers
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"name", "uscc", "legal_rep_name", "legal_rep_id_type", "sms_code", "agreed"} <= fields


async def test_a_wrong_sms_code_is_refused(flows: Any, client: httpx.AsyncClient, api: ApiDriver) -> None:
    session = await api.register()
    code = await api.sms_code(session.phone, "certify")
    wrong = "000000" if code != "000000" else "111111"
    r = await flows.certify(session, sms_code=wrong)
    assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"
    assert (await my_org(client, session.headers))["certified"] is False
    # A code of another purpose does not certify either.
    login_code = await api.sms_code(session.phone, "login")
    r = await flows.certify(session, sms_code=login_code)
    assert r.status_code == 400 and r.json()["code"] == "sms_code_invalid"


async def test_certifying_twice_is_409(flows: Any, api: ApiDriver) -> None:
    session, _org = await flows.certified()
    r = await flows.certify(session)
    assert r.status_code == 409
    assert r.json()["code"] == "already_certified"


async def test_a_refusal_of_the_verification_provider_is_422(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, events: Any
) -> None:
    probe = await events("identity.organization_certified")
    session = await api.register()
    r = await flows.certify(session, name="广西信息不符有限公司不通过")
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "enterprise_verification_failed"
    assert problem["detail"].startswith("企业信息核验未通过：")
    assert problem["reason"]
    org = await my_org(client, session.headers)
    assert org["certified"] is False and org["uscc"] is None
    await probe.assert_none()


async def test_only_signed_in_owners_certify(flows: Any, client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/me/organization/certification", json=flows.certification(sms_code="123456")
    )
    assert r.status_code == 401
    r = await client.get("/api/v1/me/organization")
    assert r.status_code == 401
