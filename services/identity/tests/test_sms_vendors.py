"""The SMS adapters against a fake of each vendor's HTTP API on 127.0.0.1: the real SDK sends
real requests; what it sends, each refusal's problem, and the retries of an outage."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, get_args

import httpx
import pytest

from common.errors import Problem
from common.testing.api_client import ApiDriver, random_phone
from common.testing.vendor_fakes import FakeVendor, Reply, Seen, closed_port
from identity.adapters.sms import AliyunSms, TencentSms
from identity.config import Settings
from identity.schemas.auth import SmsCodeIn

PHONE = "13800138000"
CODE = "615243"
TEMPLATES = {
    "sms_template_register": "SMS_1001",
    "sms_template_login": "SMS_1002",
    "sms_template_certify": "SMS_1003",
    "sms_template_reset_password": "SMS_1004",
}


def settings(provider: str, endpoint: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "sms_provider": provider,
        "sms_sign_name": "广西制造服务券",
        "sms_endpoint": endpoint,
        "aliyun_access_key_id": "LTAI-test-id",
        "aliyun_access_key_secret": "aliyun-test-secret",
        "tencent_secret_id": "AKID-test-id",
        "tencent_secret_key": "tencent-test-key",
        "tencent_sms_sdk_app_id": "1400000001",
        "vendor_timeout_seconds": 2,
        "vendor_retry_wait_seconds": 0,
        **TEMPLATES,
    }
    values.update(overrides)
    return Settings(**values)


async def send(sms: AliyunSms | TencentSms, purpose: str = "register") -> None:
    await sms.send(None, PHONE, purpose, CODE)  # type: ignore[arg-type] # the vendors keep nothing here


async def refused(sms: AliyunSms | TencentSms) -> Problem:
    with pytest.raises(Problem) as caught:
        await send(sms)
    return caught.value


def test_every_purpose_of_a_code_has_its_template_setting() -> None:
    purposes = set(get_args(SmsCodeIn.model_fields["purpose"].annotation))
    assert set(settings("aliyun", "x").sms_templates()) == purposes


# --- Aliyun ---------------------------------------------------------------------------------------


def aliyun_ok() -> Reply:
    return Reply(200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R1"})


# Every vendor sends each purpose's own template (the settings above).
EACH_PURPOSE = pytest.mark.parametrize(
    ("purpose", "template"), [(key.removeprefix("sms_template_"), t) for key, t in TEMPLATES.items()]
)


def aliyun_code(code: str, status: int = 200) -> Reply:
    return Reply(status, {"Code": code, "Message": "refused", "RequestId": "R2"})


@EACH_PURPOSE
async def test_aliyun_sends_the_code_with_the_signature_and_the_purposes_template(
    fake_vendor: FakeVendor, purpose: str, template: str
) -> None:
    fake_vendor.answer(aliyun_ok())
    await send(AliyunSms(settings("aliyun", fake_vendor.endpoint)), purpose)
    [request] = fake_vendor.seen
    assert request.method == "POST" and request.action == "SendSms"
    assert request.headers["x-acs-version"] == "2017-05-25"
    assert request.query["PhoneNumbers"] == PHONE
    assert request.query["SignName"] == "广西制造服务券"
    assert request.query["TemplateCode"] == template
    assert json.loads(request.query["TemplateParam"]) == {"code": CODE}
    # Signed with the access key (its id in the credential, never the secret).
    authorization = request.headers["authorization"]
    assert "LTAI-test-id" in authorization and "aliyun-test-secret" not in authorization


@pytest.mark.parametrize(
    ("vendor_code", "status", "problem_status", "problem_code"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", 200, 429, "sms_rate_limited"),
        ("isv.DAY_LIMIT_CONTROL", 200, 429, "sms_rate_limited"),
        ("isv.AMOUNT_NOT_ENOUGH", 200, 503, "sms_quota_exceeded"),
        ("isv.OUT_OF_SERVICE", 200, 503, "sms_quota_exceeded"),
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, 422, "sms_phone_invalid"),
        ("isv.BLACK_KEY_CONTROL_LIMIT", 200, 422, "sms_phone_blocked"),
        ("isv.SMS_SIGNATURE_ILLEGAL", 200, 503, "sms_misconfigured"),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, 503, "sms_misconfigured"),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, 503, "sms_misconfigured"),
        ("InvalidAccessKeyId.NotFound", 404, 503, "sms_misconfigured"),
        ("SignatureDoesNotMatch", 400, 503, "sms_misconfigured"),
        ("isv.SOMETHING_NEW", 200, 503, "sms_unavailable"),
    ],
)
async def test_aliyun_refusals_become_problems_and_are_not_retried(
    fake_vendor: FakeVendor, vendor_code: str, status: int, problem_status: int, problem_code: str
) -> None:
    fake_vendor.answer(aliyun_code(vendor_code, status))
    problem = await refused(AliyunSms(settings("aliyun", fake_vendor.endpoint)))
    assert (problem.status, problem.code) == (problem_status, problem_code)
    assert len(fake_vendor.seen) == 1


async def test_aliyun_outage_is_retried_then_answers_503(fake_vendor: FakeVendor) -> None:
    sms = AliyunSms(settings("aliyun", fake_vendor.endpoint, vendor_attempts=3))
    fake_vendor.answer(aliyun_code("isp.SYSTEM_ERROR", 500), aliyun_ok())
    await send(sms)  # the second try goes through
    assert len(fake_vendor.seen) == 2

    fake_vendor.answer(aliyun_code("ServiceUnavailable", 503))
    problem = await refused(sms)
    assert (problem.status, problem.code) == (503, "sms_unavailable")
    assert "短信服务暂不可用" in problem.detail
    assert len(fake_vendor.seen) == 3

    fake_vendor.answer(aliyun_code("isp.SYSTEM_ERROR", 200))  # the vendor's own error in a 200
    assert (await refused(sms)).code == "sms_unavailable"
    assert len(fake_vendor.seen) == 3


async def test_aliyun_connection_refused_is_retried_then_answers_503() -> None:
    sms = AliyunSms(settings("aliyun", f"127.0.0.1:{closed_port()}", vendor_attempts=2))
    problem = await refused(sms)
    assert (problem.status, problem.code) == (503, "sms_unavailable")


# --- Tencent --------------------------------------------------------------------------------------


def tencent_status(code: str = "Ok") -> Reply:
    return Reply(
        200,
        {
            "Response": {
                "SendStatusSet": [
                    {
                        "SerialNo": "5000:1045710669157053657849499619",
                        "PhoneNumber": f"+86{PHONE}",
                        "Fee": 1,
                        "SessionContext": "",
                        "Code": code,
                        "Message": "send success" if code == "Ok" else "refused",
                        "IsoCode": "CN",
                    }
                ],
                "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
            }
        },
    )


def tencent_error(code: str, status: int = 200) -> Reply:
    return Reply(status, {"Response": {"Error": {"Code": code, "Message": "refused"}, "RequestId": "r-1"}})


@EACH_PURPOSE
async def test_tencent_sends_the_code_with_the_signature_and_the_purposes_template(
    fake_vendor: FakeVendor, purpose: str, template: str
) -> None:
    fake_vendor.answer(tencent_status())
    await send(TencentSms(settings("tencent", fake_vendor.endpoint)), purpose)
    [request] = fake_vendor.seen
    assert request.method == "POST" and request.action == "SendSms"
    assert request.headers["x-tc-version"] == "2021-01-11"
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.json() == {
        "PhoneNumberSet": [f"+86{PHONE}"],
        "SmsSdkAppId": "1400000001",
        "SignName": "广西制造服务券",
        "TemplateId": template,
        "TemplateParamSet": [CODE],
    }
    authorization = request.headers["authorization"]
    assert "AKID-test-id" in authorization and "tencent-test-key" not in authorization


@pytest.mark.parametrize(
    ("reply", "problem_status", "problem_code"),
    [
        (tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"), 429, "sms_rate_limited"),
        (tencent_status("LimitExceeded.PhoneNumberDailyLimit"), 429, "sms_rate_limited"),
        (tencent_status("LimitExceeded.AppDailyLimit"), 503, "sms_quota_exceeded"),
        (tencent_error("FailedOperation.InsufficientBalanceInSmsPackage"), 503, "sms_quota_exceeded"),
        (tencent_status("InvalidParameterValue.IncorrectPhoneNumber"), 422, "sms_phone_invalid"),
        (tencent_status("FailedOperation.PhoneNumberInBlacklist"), 422, "sms_phone_blocked"),
        (tencent_error("FailedOperation.SignatureIncorrectOrUnapproved"), 503, "sms_misconfigured"),
        (tencent_error("FailedOperation.TemplateIncorrectOrUnapproved"), 503, "sms_misconfigured"),
        (tencent_error("UnauthorizedOperation.SmsSdkAppIdVerifyFail"), 503, "sms_misconfigured"),
        (tencent_error("AuthFailure.SecretIdNotFound"), 503, "sms_misconfigured"),
        (tencent_status("FailedOperation.SomethingNew"), 503, "sms_unavailable"),
    ],
)
async def test_tencent_refusals_become_problems_and_are_not_retried(
    fake_vendor: FakeVendor, reply: Reply, problem_status: int, problem_code: str
) -> None:
    fake_vendor.answer(reply)
    problem = await refused(TencentSms(settings("tencent", fake_vendor.endpoint)))
    assert (problem.status, problem.code) == (problem_status, problem_code)
    assert len(fake_vendor.seen) == 1


async def test_tencent_outage_is_retried_then_answers_503(fake_vendor: FakeVendor) -> None:
    sms = TencentSms(settings("tencent", fake_vendor.endpoint, vendor_attempts=3))
    fake_vendor.answer(Reply(502, b"<html>bad gateway</html>", "text/html"), tencent_status())
    await send(sms)
    assert len(fake_vendor.seen) == 2

    fake_vendor.answer(tencent_error("InternalError.Timeout"))
    problem = await refused(sms)
    assert (problem.status, problem.code) == (503, "sms_unavailable")
    assert len(fake_vendor.seen) == 3


async def test_tencent_connection_refused_is_retried_then_answers_503() -> None:
    sms = TencentSms(settings("tencent", f"127.0.0.1:{closed_port()}", vendor_attempts=2))
    problem = await refused(sms)
    assert (problem.status, problem.code) == (503, "sms_unavailable")


async def test_the_code_and_the_secrets_are_never_logged(
    fake_vendor: FakeVendor, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for provider, ok, bad in (
        ("aliyun", aliyun_ok(), aliyun_code("isv.SMS_TEMPLATE_ILLEGAL")),
        ("tencent", tencent_status(), tencent_error("FailedOperation.TemplateIncorrectOrUnapproved")),
    ):
        sms = (AliyunSms if provider == "aliyun" else TencentSms)(settings(provider, fake_vendor.endpoint))
        fake_vendor.answer(ok)
        await send(sms)
        fake_vendor.answer(bad)
        await refused(sms)
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    for secret in (CODE, PHONE, "aliyun-test-secret", "tencent-test-key"):
        assert secret not in logged


def slow(reply: Reply, seconds: float = 1.0) -> Callable[[Seen], Reply]:
    def answer(request: Seen) -> Reply:
        time.sleep(seconds)  # in the fake server's thread
        return reply

    return answer


@pytest.mark.parametrize(
    ("sms_class", "provider", "ok"),
    [(AliyunSms, "aliyun", aliyun_ok()), (TencentSms, "tencent", tencent_status())],
)
async def test_a_vendor_that_does_not_answer_in_time_is_tried_again_then_503(
    fake_vendor: FakeVendor, sms_class: type[AliyunSms | TencentSms], provider: str, ok: Reply
) -> None:
    sms = sms_class(settings(provider, fake_vendor.endpoint, vendor_timeout_seconds=0.3, vendor_attempts=2))
    fake_vendor.answer(slow(ok))
    problem = await refused(sms)
    assert (problem.status, problem.code) == (503, "sms_unavailable")
    assert len(fake_vendor.seen) == 2


# --- through identity's API -----------------------------------------------------------------------


@pytest.mark.broker
async def test_a_code_sent_through_the_vendor_registers_and_a_refusal_keeps_the_last_one(
    make_identity: Any, fake_vendor: FakeVendor
) -> None:
    app = await make_identity(
        sms_provider="tencent",
        sms_sign_name="广西制造服务券",
        sms_endpoint=fake_vendor.endpoint,
        tencent_secret_id="AKID-test-id",
        tencent_secret_key="tencent-test-key",
        tencent_sms_sdk_app_id="1400000001",
        vendor_retry_wait_seconds=0,
        **TEMPLATES,
    )
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        api, phone = ApiDriver(c), random_phone()
        fake_vendor.answer(tencent_status())
        assert (await api.request_sms(phone, "register")).status_code == 202
        [request] = fake_vendor.seen
        assert request.json()["PhoneNumberSet"] == [f"+86{phone}"]
        assert request.json()["TemplateId"] == "SMS_1001"
        [code] = request.json()["TemplateParamSet"]
        # The console's copy is not kept: the code went to the vendor only.
        assert (await c.get("/api/v1/dev/sms-codes/latest", params={"phone": phone})).status_code == 404

        # The vendor refuses the next one: a clear problem, and the code already sent still works.
        fake_vendor.answer(tencent_status("LimitExceeded.PhoneNumberOneHourLimit"))
        r = await api.request_sms(phone, "register")
        assert r.status_code == 429 and r.json()["code"] == "sms_rate_limited"
        assert r.headers["retry-after"] == "60"
        fake_vendor.answer(Reply(503, b"busy", "text/plain"))
        r = await api.request_sms(phone, "register")
        assert r.status_code == 503 and r.json()["code"] == "sms_unavailable"
        assert len(fake_vendor.seen) == 3  # the outage was tried vendor_attempts (3) times

        r = await c.post(
            "/api/v1/auth/register",
            json={"enterprise_name": "广西测试制造有限公司", "phone": phone, "sms_code": code},
        )
        assert r.status_code == 201, r.text
