"""企业信息认证 with 企查查's 企业三要素核验 (ECIThreeElVerify) against a fake of its HTTP API on
127.0.0.1: the request the adapter sends (path, query, the Token/Timespan signature), each of
the registry's answers on the field it concerns, the vendor's refusals of the platform's
account as clear 503s, outages retried and then 503, and nothing secret in the logs."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from common.errors import Problem
from common.testing.vendor_fakes import FakeVendor, Reply, Seen, closed_port
from identity.adapters.enterprise import (
    DisabledEnterpriseVerifier,
    EnterpriseCheck,
    QccEnterpriseVerifier,
    enterprise_verifier,
)
from identity.config import Settings

from .conftest import Flows, make_resident_id, make_uscc
from .test_environment import production

APP_KEY = "qcc-app-key-0123456789"
SECRET_KEY = "QCC-SECRET-DO-NOT-PRINT"
NAME = "广西柳州某某汽车零部件有限公司"
USCC = "91450200MA5K00000X"
LEGAL_REP = "张三丰"
QCC = {"enterprise_verifier": "qcc", "qcc_app_key": APP_KEY, "qcc_secret_key": SECRET_KEY}


def settings(endpoint: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        **QCC,
        "qcc_endpoint": endpoint,
        "vendor_timeout_seconds": 2,
        "vendor_retry_wait_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


def verdict(result: int | str) -> Reply:
    """A ``Status`` 200 answer with the registry's ``VerifyResult``."""
    return Reply(
        200,
        {
            "Status": "200",
            "Message": "【有效请求】查询成功",
            "OrderNumber": "ECITHREEELVERIFY2026120615000000000001",
            "Result": {"VerifyResult": result},
        },
    )


def status(code: str, message: str = "【无效请求】") -> Reply:
    return Reply(200, {"Status": code, "Message": message, "OrderNumber": "ECI0001", "Result": None})


async def verify(verifier: QccEnterpriseVerifier) -> EnterpriseCheck:
    return await verifier.verify(
        name=NAME, uscc=USCC, legal_rep_name=LEGAL_REP, id_type="resident_id", id_number="x"
    )


async def refused(verifier: QccEnterpriseVerifier) -> Problem:
    with pytest.raises(Problem) as caught:
        await verify(verifier)
    return caught.value


async def test_the_three_elements_go_to_ECIThreeElVerify_signed_with_the_key_and_secret(
    fake_vendor: FakeVendor,
) -> None:
    fake_vendor.answer(verdict(1))
    before = int(time.time())
    assert await verify(QccEnterpriseVerifier(settings(fake_vendor.endpoint))) == EnterpriseCheck(True)
    [request] = fake_vendor.seen
    assert (request.method, request.path) == ("GET", "/ECIThreeElVerify/GetInfo")
    assert request.query == {"key": APP_KEY, "creditCode": USCC, "companyName": NAME, "operName": LEGAL_REP}
    timespan = request.headers["timespan"]
    assert before <= int(timespan) <= int(time.time())
    expected = hashlib.md5(f"{APP_KEY}{timespan}{SECRET_KEY}".encode()).hexdigest().upper()
    assert request.headers["token"] == expected and len(expected) == 32
    # The legal representative's ID number is not one of the three: it never leaves.
    assert "x" not in request.query.values()


@pytest.mark.parametrize(
    ("reply", "field", "reason"),
    [
        (verdict(0), "uscc", "未查到该统一社会信用代码登记的企业"),
        (status("201", "【有效请求】查询无结果"), "uscc", "未查到该统一社会信用代码登记的企业"),
        (verdict(2), "name", "企业名称与该统一社会信用代码登记的企业名称不一致"),
        (verdict(3), "legal_rep_name", "法定代表人姓名与登记信息不一致"),
        (verdict("3"), "legal_rep_name", "法定代表人姓名与登记信息不一致"),  # a string all the same
    ],
)
async def test_a_mismatch_of_the_registry_concerns_the_field_that_differs(
    fake_vendor: FakeVendor, reply: Reply, field: str, reason: str
) -> None:
    fake_vendor.answer(reply)
    check = await verify(QccEnterpriseVerifier(settings(fake_vendor.endpoint)))
    assert check.ok is False and check.fields == (field,)
    assert check.reason and check.reason.startswith(reason)
    assert len(fake_vendor.seen) == 1  # an answer, not an outage: not asked again


@pytest.mark.parametrize(
    ("code", "problem_code"),
    [
        ("101", "enterprise_verification_misconfigured"),  # 当前的KEY无效或者还未生效中
        ("107", "enterprise_verification_misconfigured"),  # 被禁止的IP或者签名错误
        ("115", "enterprise_verification_misconfigured"),  # 身份验证错误或者已过期 (Token)
        ("214", "enterprise_verification_misconfigured"),  # 您还未购买过该接口
        ("102", "enterprise_verification_quota_exceeded"),  # 当前KEY已欠费
        ("112", "enterprise_verification_quota_exceeded"),  # 您的账号剩余使用量已不足或已过期
        ("116", "enterprise_verification_quota_exceeded"),  # 请求超过每日调用总量限制
        ("202", "enterprise_verification_unavailable"),  # 查询参数错误: ours, not the user's
    ],
)
async def test_a_refusal_of_the_platforms_account_is_a_clear_503_not_retried(
    fake_vendor: FakeVendor, code: str, problem_code: str
) -> None:
    fake_vendor.answer(status(code))
    problem = await refused(QccEnterpriseVerifier(settings(fake_vendor.endpoint, vendor_attempts=3)))
    assert (problem.status, problem.code) == (503, problem_code)
    assert len(fake_vendor.seen) == 1


async def test_a_verdict_the_documentation_does_not_list_is_a_503_not_a_guess(
    fake_vendor: FakeVendor,
) -> None:
    fake_vendor.answer(verdict(9))
    problem = await refused(QccEnterpriseVerifier(settings(fake_vendor.endpoint)))
    assert (problem.status, problem.code) == (503, "enterprise_verification_unavailable")
    assert len(fake_vendor.seen) == 1


async def test_an_outage_is_retried_then_answers_503(fake_vendor: FakeVendor) -> None:
    verifier = QccEnterpriseVerifier(settings(fake_vendor.endpoint, vendor_attempts=3))
    fake_vendor.answer(Reply(502, b"<html>bad gateway</html>", "text/html"), verdict(1))
    assert (await verify(verifier)).ok
    assert len(fake_vendor.seen) == 2

    fake_vendor.answer(status("199", "【无效请求】系统未知错误"))  # the vendor's own error in a 200
    problem = await refused(verifier)
    assert (problem.status, problem.code) == (503, "enterprise_verification_unavailable")
    assert len(fake_vendor.seen) == 3

    fake_vendor.answer(Reply(200, b"not json", "text/plain"))
    assert (await refused(verifier)).code == "enterprise_verification_unavailable"


async def test_a_vendor_that_does_not_answer_in_time_is_tried_again_then_503(
    fake_vendor: FakeVendor,
) -> None:
    def slow(request: Seen) -> Reply:
        time.sleep(0.6)  # in the fake server's thread
        return verdict(1)

    fake_vendor.answer(slow)
    verifier = QccEnterpriseVerifier(
        settings(fake_vendor.endpoint, vendor_attempts=2, vendor_timeout_seconds=0.2)
    )
    assert (await refused(verifier)).code == "enterprise_verification_unavailable"
    assert len(fake_vendor.seen) == 2


async def test_connection_refused_is_retried_then_answers_503() -> None:
    verifier = QccEnterpriseVerifier(settings(f"127.0.0.1:{closed_port()}", vendor_attempts=2))
    problem = await refused(verifier)
    assert (problem.status, problem.code) == (503, "enterprise_verification_unavailable")


async def test_the_key_the_secret_and_the_token_are_never_logged(
    fake_vendor: FakeVendor, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = QccEnterpriseVerifier(settings(fake_vendor.endpoint, vendor_attempts=2))
    for reply in (verdict(1), verdict(2), status("101"), Reply(500, {"Status": "500"})):
        fake_vendor.answer(reply)
        try:
            await verify(verifier)
        except Problem:
            pass
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    tokens = {s.headers["token"] for s in fake_vendor.seen}
    for secret in (APP_KEY, SECRET_KEY, *tokens):
        assert secret not in logged


def test_the_qcc_setting_chooses_the_adapter_and_a_half_configured_one_is_refused() -> None:
    chosen = Settings(**production(**QCC))
    assert isinstance(enterprise_verifier(chosen.enterprise_verifier, chosen), QccEnterpriseVerifier)
    assert SECRET_KEY not in repr(chosen)
    assert isinstance(enterprise_verifier("disabled", Settings(**production())), DisabledEnterpriseVerifier)
    for missing, name in (
        ("qcc_app_key", "IDENTITY_QCC_APP_KEY"),
        ("qcc_secret_key", "IDENTITY_QCC_SECRET_KEY"),
    ):
        values = production(**{k: v for k, v in QCC.items() if k != missing})
        with pytest.raises(ValidationError) as caught:
            Settings(**values)
        message = str(caught.value)
        assert f"settings missing for the chosen vendors: {name}" in message
        assert SECRET_KEY not in message and APP_KEY not in message


@pytest.mark.broker
async def test_certification_answers_the_registrys_refusal_on_that_field_alone(
    make_identity: Any, fake_vendor: FakeVendor
) -> None:
    """Through identity's API: a name the registry does not know for that USCC is a 422 whose
    errors[] names ``name`` only (the portal shows it by that field); a match certifies."""
    app = await make_identity(**{**QCC, "qcc_endpoint": fake_vendor.endpoint, "vendor_retry_wait_seconds": 0})
    from common.testing.api_client import ApiDriver

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://identity"
    ) as client:
        flows = Flows(client, ApiDriver(client))
        session = await flows.api.register()
        uscc, id_number = make_uscc(), make_resident_id()
        fake_vendor.answer(verdict(2))
        r = await flows.certify(session, name=NAME, uscc=uscc, legal_rep_id_number=id_number)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "enterprise_verification_failed"
        assert [e["field"] for e in problem["errors"]] == ["name"]
        assert problem["detail"] == "企业信息核验未通过：企业名称与该统一社会信用代码登记的企业名称不一致"
        [asked] = fake_vendor.seen
        assert asked.query["creditCode"] == uscc and asked.query["companyName"] == NAME

        fake_vendor.answer(status("112"))
        r = await flows.certify(session, name=NAME, uscc=uscc, legal_rep_id_number=id_number)
        assert (r.status_code, r.json()["code"]) == (503, "enterprise_verification_quota_exceeded")

        fake_vendor.answer(verdict(1))
        r = await flows.certify(session, name=NAME, uscc=uscc, legal_rep_id_number=id_number)
        assert r.status_code == 200, r.text
        assert r.json()["organization"]["uscc"] == uscc
