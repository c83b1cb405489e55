"""The outside world behind interfaces: SMS gateway, enterprise verification (the
government's unified authentication platform) and face verification (人脸认证).

The development implementations exist only with ``ENVIRONMENT=development`` (settings refuse
them otherwise); "disabled" answers 503 so a misconfigured production never pretends. The real
vendors (Aliyun and Tencent Cloud SMS, Tencent Cloud FaceID, Aliyun real-person verification)
are called through their own SDKs: a refusal of the vendor becomes one of identity's problems
(errors.py), an outage (no connection, a timeout, a 5xx) is tried again a few times and then
answers 503. Neither SMS codes nor secrets are logged; a phone is logged masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import aiohttp
import httpx
import structlog
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common.errors import Problem
from common.masking import mask_phone
from identity import errors
from identity.models import DevSmsMessage

if TYPE_CHECKING:
    from identity.config import Settings

log = structlog.get_logger(__name__)


class SmsProvider(Protocol):
    async def send(self, session: AsyncSession, phone: str, purpose: str, code: str) -> None: ...


class ConsoleSms:
    """Development: the code is kept for ``/dev/sms-codes/latest``; the log shows only
    that a code went to a masked phone (logs never carry SMS codes)."""

    async def send(self, session: AsyncSession, phone: str, purpose: str, code: str) -> None:
        session.add(DevSmsMessage(phone=phone, purpose=purpose, code=code))
        log.info("sms_sent_console", phone=mask_phone(phone), purpose=purpose)


class DisabledSms:
    async def send(self, session: AsyncSession, phone: str, purpose: str, code: str) -> None:
        raise errors.sms_unavailable()


# --- calling a vendor: retries for outages, problems for refusals --------------------------------

T = TypeVar("T")


class VendorOutage(Exception):
    """The vendor did not answer (no connection, timeout, 5xx, its own internal error): worth
    another try. ``str()`` is a short reason for the log, never a payload."""


async def call_vendor(
    settings: Settings,
    vendor: str,
    call: Callable[[], Awaitable[T]],
    unavailable: Callable[[], Problem],
) -> T:
    """``call()`` with a few short tries while the vendor is out; then ``unavailable()``.
    A refusal (a :class:`Problem` raised by ``call``) is not tried again."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(settings.vendor_attempts),
            wait=wait_exponential(multiplier=settings.vendor_retry_wait_seconds, max=2),
            retry=retry_if_exception_type(VendorOutage),
            reraise=True,
        ):
            with attempt:
                return await call()
    except VendorOutage as outage:
        log.warning(
            "vendor_unavailable", vendor=vendor, attempts=settings.vendor_attempts, reason=str(outage)
        )
        raise unavailable() from None
    raise AssertionError("unreachable")  # pragma: no cover


SmsRefusal = Literal["rate_limited", "quota_exceeded", "phone_invalid", "phone_blocked", "misconfigured"]

_SMS_PROBLEMS: dict[str, Callable[[], Problem]] = {
    "rate_limited": errors.sms_rate_limited,
    "quota_exceeded": errors.sms_quota_exceeded,
    "phone_invalid": errors.sms_phone_invalid,
    "phone_blocked": errors.sms_phone_blocked,
    "misconfigured": errors.sms_misconfigured,
}


def _sms_refused(vendor: str, vendor_code: str, kinds: dict[str, SmsRefusal], phone: str) -> Problem:
    kind = kinds.get(vendor_code)
    if kind is None:
        # A refusal we do not know: not the user's fault as far as we can tell.
        log.error("sms_refused_unknown", vendor=vendor, vendor_code=vendor_code, phone=mask_phone(phone))
        return errors.sms_unavailable()
    level = log.error if kind in ("misconfigured", "quota_exceeded") else log.info
    level("sms_refused", vendor=vendor, vendor_code=vendor_code, kind=kind, phone=mask_phone(phone))
    return _SMS_PROBLEMS[kind]()


# Aliyun dysmsapi SendSms (https://help.aliyun.com/document_detail/101346.html). The codes come
# in the body of a 200 (``Code`` other than ``OK``) or as the code of a 4xx.
ALIYUN_SMS_REFUSALS: dict[str, SmsRefusal] = {
    "isv.BUSINESS_LIMIT_CONTROL": "rate_limited",
    "isv.DAY_LIMIT_CONTROL": "rate_limited",
    "BUSINESS_LIMIT_CONTROL_MINUTE": "rate_limited",
    "isv.BUSINESS_LIMIT_HOUR": "rate_limited",
    "isv.BUSINESS_LIMIT_DAY": "rate_limited",
    "BUSINESS_LIMIT_CONTROL_PHONE": "rate_limited",
    "isv.AMOUNT_NOT_ENOUGH": "quota_exceeded",
    "isv.OUT_OF_SERVICE": "quota_exceeded",
    "isv.MOBILE_NUMBER_ILLEGAL": "phone_invalid",
    "isv.COUNTRY_RESTRICTED": "phone_invalid",
    "isv.NOT_SUPPORTED_COUNTRY": "phone_invalid",
    # "黑名单管控": Aliyun's name for a number (or word) on its blacklist. A blocked or
    # unsubscribed number may also be reported only later, in the delivery receipt.
    "isv.BLACK_KEY_CONTROL_LIMIT": "phone_blocked",
    "isv.SMS_SIGNATURE_ILLEGAL": "misconfigured",
    "isv.SMS_SIGN_NAME_ILLEGAL": "misconfigured",
    "isv.SMS_TEMPLATE_ILLEGAL": "misconfigured",
    "isv.TEMPLATE_MISSING_PARAMETERS": "misconfigured",
    "isv.INVALID_JSON_PARAM": "misconfigured",
    "isv.INVALID_PARAMETERS": "misconfigured",
    "isv.ACCOUNT_NOT_EXISTS": "misconfigured",
    "isv.ACCOUNT_ABNORMAL": "misconfigured",
    "isv.PRODUCT_UN_SUBSCRIPT": "misconfigured",
    "isv.PRODUCT_UNSUBSCRIBE": "misconfigured",
    "isp.RAM_PERMISSION_DENY": "misconfigured",
    "InvalidAccessKeyId.NotFound": "misconfigured",
    "InvalidAccessKeyId.Inactive": "misconfigured",
    "SignatureDoesNotMatch": "misconfigured",
    "Forbidden.RAM": "misconfigured",
}
# The vendor's own trouble: tried again, then 503.
ALIYUN_OUTAGES = frozenset({"isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "isp.UNKNOWN", "ServiceUnavailable"})


class VendorSms:
    """A vendor's SMS: the purpose's template, retried through outages, refusals mapped."""

    vendor: str
    settings: Settings

    async def send(self, session: AsyncSession, phone: str, purpose: str, code: str) -> None:
        template = self.settings.sms_templates()[purpose]
        await call_vendor(
            self.settings,
            self.vendor,
            lambda: self._send_once(phone, template or "", code),
            errors.sms_unavailable,
        )
        log.info("sms_sent", vendor=self.vendor, phone=mask_phone(phone), purpose=purpose)

    async def _send_once(self, phone: str, template: str, code: str) -> None:
        raise NotImplementedError


def _aliyun_config(settings: Settings, endpoint: str | None, default: str) -> Any:
    """The SDK configuration of an Aliyun product (its AccessKey, endpoint and timeouts)."""
    from alibabacloud_tea_openapi import models as open_api_models

    assert settings.aliyun_access_key_id and settings.aliyun_access_key_secret
    host = endpoint or default
    timeout_ms = int(settings.vendor_timeout_seconds * 1000)
    return open_api_models.Config(
        access_key_id=settings.aliyun_access_key_id.get_secret_value(),
        access_key_secret=settings.aliyun_access_key_secret.get_secret_value(),
        endpoint=host,
        # A private endpoint given as host:port in tests is plain HTTP on loopback.
        protocol="http" if _is_loopback(host) else "https",
        read_timeout=timeout_ms,
        connect_timeout=timeout_ms,
    )


class AliyunRejected(Exception):
    """An Aliyun API rejected the request (its error code in ``code``): the vendor's answer,
    not a rule of ours; the caller maps it to its problem."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def _aliyun_call(call: Callable[[], Awaitable[T]]) -> T:
    """One call of an Aliyun SDK: the vendor's trouble is a :class:`VendorOutage`, its
    rejection (a 4xx with an error code) an :class:`AliyunRejected`."""
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
    from darabonba.exceptions import UnretryableException

    try:
        return await call()
    except ThrottlingException as e:  # the API's own request rate, not the user's
        raise VendorOutage(f"throttled {e.code}") from None
    except ServerException as e:
        raise VendorOutage(f"{e.status_code} {e.code}") from None
    except ClientException as e:
        vendor_code = str(e.code)
        if vendor_code in ALIYUN_OUTAGES or vendor_code.startswith("Throttling"):
            raise VendorOutage(f"{e.status_code} {vendor_code}") from None
        raise AliyunRejected(vendor_code) from None
    except (UnretryableException, aiohttp.ClientError, TimeoutError, ValueError) as e:
        # No connection, a timeout (wrapped by the SDK as unretryable), an answer that is not JSON.
        raise VendorOutage(type(e).__name__) from None


class AliyunSms(VendorSms):
    """阿里云短信服务 (dysmsapi 2017-05-25 SendSms), through the SDK's async calls. The template
    of a purpose has one variable, ``${code}``."""

    vendor = "aliyun"

    def __init__(self, settings: Settings) -> None:
        from alibabacloud_dysmsapi20170525.client import Client

        self.settings = settings
        self.client = Client(_aliyun_config(settings, settings.sms_endpoint, "dysmsapi.aliyuncs.com"))

    async def _send_once(self, phone: str, template: str, code: str) -> None:
        from alibabacloud_dysmsapi20170525 import models as sms_models
        from darabonba.runtime import RuntimeOptions

        request = sms_models.SendSmsRequest(
            phone_numbers=phone,
            sign_name=self.settings.sms_sign_name,
            template_code=template,
            template_param=json.dumps({"code": code}),
        )
        try:
            response = await _aliyun_call(
                lambda: self.client.send_sms_with_options_async(request, RuntimeOptions())
            )
        except AliyunRejected as e:
            raise _sms_refused(self.vendor, e.code, ALIYUN_SMS_REFUSALS, phone) from None
        body = response.body
        vendor_code = str(body.code) if body is not None else "None"
        if vendor_code == "OK":
            return
        if vendor_code in ALIYUN_OUTAGES:
            raise VendorOutage(vendor_code)
        raise _sms_refused(self.vendor, vendor_code, ALIYUN_SMS_REFUSALS, phone)


# Tencent Cloud SMS SendSms (2021-01-11; https://cloud.tencent.com/document/product/382/55981).
# A refusal is either the request's error code or the ``Code`` of the phone's SendStatus.
TENCENT_SMS_REFUSALS: dict[str, SmsRefusal] = {
    "LimitExceeded.PhoneNumberDailyLimit": "rate_limited",
    "LimitExceeded.PhoneNumberOneHourLimit": "rate_limited",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "rate_limited",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "rate_limited",
    "LimitExceeded.DeliveryFrequencyLimit": "rate_limited",
    "LimitExceeded.AppDailyLimit": "quota_exceeded",
    "LimitExceeded.AppMainlandChinaDailyLimit": "quota_exceeded",
    "LimitExceeded.AppGlobalDailyLimit": "quota_exceeded",
    "LimitExceeded.DailyLimit": "quota_exceeded",
    "LimitExceeded.GlobalSmsSendingRateLimit": "quota_exceeded",
    "FailedOperation.InsufficientBalanceInSmsPackage": "quota_exceeded",
    "UnauthorizedOperation.ServiceSuspendDueToArrears": "quota_exceeded",
    "InvalidParameterValue.IncorrectPhoneNumber": "phone_invalid",
    "FailedOperation.PhoneNumberParseFail": "phone_invalid",
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": "phone_invalid",
    "FailedOperation.PhoneNumberInBlacklist": "phone_blocked",
    "LimitExceeded.AppCountryOrRegionInBlacklist": "phone_blocked",
    "FailedOperation.SignatureIncorrectOrUnapproved": "misconfigured",
    "FailedOperation.MissingSignature": "misconfigured",
    "FailedOperation.TemplateIncorrectOrUnapproved": "misconfigured",
    "FailedOperation.TemplateIdNotExist": "misconfigured",
    "FailedOperation.TemplateUnapprovedOrNotExist": "misconfigured",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": "misconfigured",
    "InvalidParameterValue.TemplateParameterFormatError": "misconfigured",
    "InvalidParameterValue.SdkAppIdNotExist": "misconfigured",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "misconfigured",
    "UnauthorizedOperation.SdkAppIdIsDisabled": "misconfigured",
    "UnauthorizedOperation.RequestIpNotInWhitelist": "misconfigured",
    "UnauthorizedOperation.RequestPermissionDeny": "misconfigured",
    "FailedOperation.NotEnterpriseCertification": "misconfigured",
    "AuthFailure.SecretIdNotFound": "misconfigured",
    "AuthFailure.SignatureFailure": "misconfigured",
    "AuthFailure.UnauthorizedOperation": "misconfigured",
}


def _tencent_outage(code: str) -> bool:
    """The vendor's own trouble (a non-200 is reported by the SDK as ServerNetworkError)."""
    return code in ("ServerNetworkError", "ClientNetworkError", "RequestLimitExceeded") or code.startswith(
        "InternalError"
    )


def _tencent_profile(settings: Settings, endpoint: str | None, default: str) -> object:
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    host = endpoint or default
    return ClientProfile(
        httpProfile=HttpProfile(
            protocol="http" if _is_loopback(host) else "https",
            endpoint=host,
            reqTimeout=settings.vendor_timeout_seconds,
        )
    )


def _quiet_sdk_logs() -> None:
    """Tencent's SDK logs each request and answer at DEBUG (the SMS code, the ID number and name
    of a face check among them): never below WARNING, whatever the service's log level."""
    logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)


def _tencent_credential(settings: Settings) -> object:
    from tencentcloud.common.credential import Credential

    assert settings.tencent_secret_id and settings.tencent_secret_key
    return Credential(
        settings.tencent_secret_id.get_secret_value(), settings.tencent_secret_key.get_secret_value()
    )


class TencentSms(VendorSms):
    """腾讯云短信 (SendSms 2021-01-11), through the SDK's async client. The template of a purpose
    has one variable, ``{1}``: the code."""

    vendor = "tencent"

    def __init__(self, settings: Settings) -> None:
        _quiet_sdk_logs()
        self.settings = settings
        self.credential = _tencent_credential(settings)
        self.profile = _tencent_profile(settings, settings.sms_endpoint, "sms.tencentcloudapi.com")

    async def _send_once(self, phone: str, template: str, code: str) -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models
        from tencentcloud.sms.v20210111.sms_client_async import SmsClient

        request = models.SendSmsRequest()
        request.PhoneNumberSet = [f"+86{phone}"]
        request.SmsSdkAppId = self.settings.tencent_sms_sdk_app_id
        request.SignName = self.settings.sms_sign_name
        request.TemplateId = template
        request.TemplateParamSet = [code]
        try:
            async with SmsClient(self.credential, self.settings.tencent_region, self.profile) as client:
                response = await client.SendSms(request)
        except TencentCloudSDKException as e:
            vendor_code = str(e.code)
            if _tencent_outage(vendor_code):
                raise VendorOutage(vendor_code) from None
            raise _sms_refused(self.vendor, vendor_code, TENCENT_SMS_REFUSALS, phone) from None
        except (httpx.TransportError, ValueError, KeyError) as e:  # no connection, timeout, not JSON
            raise VendorOutage(type(e).__name__) from None
        statuses = response.SendStatusSet or []
        vendor_code = str(statuses[0].Code) if statuses else "None"
        if vendor_code == "Ok":
            return
        if _tencent_outage(vendor_code):
            raise VendorOutage(vendor_code)
        raise _sms_refused(self.vendor, vendor_code, TENCENT_SMS_REFUSALS, phone)


def _is_loopback(host: str) -> bool:
    name = host.split("://")[-1].rsplit(":", 1)[0]
    return name in ("127.0.0.1", "localhost", "::1", "[::1]")


# The certification form's fields a refusal of the registry can concern (schemas.organizations).
ENTERPRISE_FIELDS = ("name", "uscc", "legal_rep_name")


@dataclass(frozen=True)
class EnterpriseCheck:
    ok: bool
    reason: str | None = None
    # The fields the refusal concerns: the one the registry says differs, or all three.
    fields: tuple[str, ...] = ENTERPRISE_FIELDS


class EnterpriseVerifier(Protocol):
    async def verify(
        self, *, name: str, uscc: str, legal_rep_name: str, id_type: str, id_number: str
    ) -> EnterpriseCheck: ...


class SimulatedEnterpriseVerifier:
    """Development: details that pass the format checks are accepted, except an enterprise
    name ending in 不通过 (so the refusal path can be tried by hand)."""

    async def verify(
        self, *, name: str, uscc: str, legal_rep_name: str, id_type: str, id_number: str
    ) -> EnterpriseCheck:
        if name.endswith("不通过"):
            return EnterpriseCheck(False, "企业名称、统一社会信用代码与法定代表人信息不一致")
        return EnterpriseCheck(True)


class DisabledEnterpriseVerifier:
    async def verify(
        self, *, name: str, uscc: str, legal_rep_name: str, id_type: str, id_number: str
    ) -> EnterpriseCheck:
        raise errors.enterprise_verification_unavailable()


# 企查查 ECIThreeElVerify (https://openapi.qcc.com/dataApi/856): ``Result.VerifyResult`` of a
# ``Status`` "200" answer says which of the three differs.
QCC_MISMATCHES: dict[str, tuple[str, str]] = {
    "0": ("uscc", "未查到该统一社会信用代码登记的企业，请核对统一社会信用代码"),
    "2": ("name", "企业名称与该统一社会信用代码登记的企业名称不一致"),
    "3": ("legal_rep_name", "法定代表人姓名与登记信息不一致"),
}
QCC_NOT_FOUND = "201"  # 查询无结果: no enterprise under that code
# The request status codes (https://openapi.qcc.com/services/after/status). Refusals of the
# platform's account: its key, signature (Token/Timespan), IP, or the interface not bought.
QCC_MISCONFIGURED = frozenset(
    {"101", "103", "104", "106", "107", "108", "111", "113", "114", "115", "118", "119", "214"}
)
# Out of balance or over a limit of the account (not the user's fault, not worth a retry).
QCC_QUOTA = frozenset({"102", "109", "112", "116", "117", "123"})
# The vendor's own trouble: tried again, then 503.
QCC_OUTAGES = frozenset({"120", "122", "124", "199", "203"})


def qcc_token(app_key: str, timespan: str, secret_key: str) -> str:
    """企查查's request signature: upper(md5(AppKey + Timespan + SecretKey))."""
    return hashlib.md5(f"{app_key}{timespan}{secret_key}".encode()).hexdigest().upper()


class QccEnterpriseVerifier:
    """企查查开放平台 企业三要素核验 (ECIThreeElVerify, ApiCode 856): the enterprise's name, its
    统一社会信用代码 and its legal representative's name, compared with the business registry.

    Why 企查查: of the registry-data providers, its API is documented as a plain HTTP API
    (GET ``/ECIThreeElVerify/GetInfo`` with ``key``, ``creditCode``, ``companyName``,
    ``operName``; headers ``Token`` = upper(md5(AppKey + Timespan + SecretKey)) and
    ``Timespan`` in Unix seconds; one scheme for all its interfaces, used unchanged by
    independent client libraries in PHP, Go and Java), with published request status codes
    (``Status``, ``Message``, ``OrderNumber`` in every answer); and its answer says *which* element differs
    (``VerifyResult`` 1 match, 0 no such USCC, 2 name differs, 3 legal representative
    differs), so the refusal lands on the form's field. It needs no SDK: httpx does it.
    Aliyun's EntElementVerify (cloudauth, ENT_3META) gives a comparable per-field answer
    (``ReasonDetail``) but needs its SDK and the RAM (ACS3) signature; 天眼查's 企业三要素验证
    documents a result code with a free-text remark, which would have to be parsed to find
    the field.

    A mismatch is the user's to correct (422 on the field); the platform's own trouble with
    the vendor (bad key or signature, quota) is a 503 that says so; an outage (no connection,
    a timeout, a 5xx, the vendor's system errors) is tried again, then 503. The AppKey, the
    SecretKey and the Token are never logged: the AppKey travels in the query string, which
    httpx logs at INFO, so its logger is kept at WARNING whatever the service's log level
    (common.logging does the same)."""

    vendor = "qcc"
    path = "/ECIThreeElVerify/GetInfo"

    def __init__(self, settings: Settings) -> None:
        assert settings.qcc_app_key and settings.qcc_secret_key
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.settings = settings
        self.base_url = _base_url(settings.qcc_endpoint or "https://api.qichacha.com")

    async def verify(
        self, *, name: str, uscc: str, legal_rep_name: str, id_type: str, id_number: str
    ) -> EnterpriseCheck:
        check = await call_vendor(
            self.settings,
            self.vendor,
            lambda: self._verify_once(name, uscc, legal_rep_name),
            errors.enterprise_verification_unavailable,
        )
        log.info("enterprise_verified", vendor=self.vendor, ok=check.ok, fields=list(check.fields))
        return check

    async def _verify_once(self, name: str, uscc: str, legal_rep_name: str) -> EnterpriseCheck:
        assert self.settings.qcc_app_key and self.settings.qcc_secret_key
        key = self.settings.qcc_app_key.get_secret_value()
        timespan = str(int(time.time()))
        headers = {
            "Token": qcc_token(key, timespan, self.settings.qcc_secret_key.get_secret_value()),
            "Timespan": timespan,
        }
        params = {"key": key, "creditCode": uscc, "companyName": name, "operName": legal_rep_name}
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, timeout=self.settings.vendor_timeout_seconds
            ) as client:
                response = await client.get(self.path, params=params, headers=headers)
        except httpx.TransportError as e:  # no connection, a timeout
            raise VendorOutage(type(e).__name__) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise VendorOutage(f"HTTP {response.status_code}")
        try:
            body = response.json()
            status = str(body.get("Status"))
        except (ValueError, AttributeError):
            raise VendorOutage(f"HTTP {response.status_code} not JSON") from None
        if status == "200":
            result = body.get("Result") or {}
            # An integer in the documented answer; a string is taken the same way.
            verdict = str(result.get("VerifyResult")) if isinstance(result, dict) else "None"
            if verdict == "1":
                return EnterpriseCheck(True)
            if verdict in QCC_MISMATCHES:
                field, reason = QCC_MISMATCHES[verdict]
                return EnterpriseCheck(False, reason, (field,))
            log.error("enterprise_verification_unknown_result", vendor=self.vendor, verify_result=verdict)
            raise errors.enterprise_verification_unavailable()
        if status == QCC_NOT_FOUND:
            field, reason = QCC_MISMATCHES["0"]
            return EnterpriseCheck(False, reason, (field,))
        if status in QCC_OUTAGES:
            raise VendorOutage(f"Status {status}")
        log.error(
            "enterprise_verification_refused",
            vendor=self.vendor,
            vendor_code=status,
            order_number=body.get("OrderNumber"),
        )
        if status in QCC_MISCONFIGURED:
            raise errors.enterprise_verification_misconfigured()
        if status in QCC_QUOTA:
            raise errors.enterprise_verification_quota_exceeded()
        raise errors.enterprise_verification_unavailable()


def _base_url(endpoint: str) -> str:
    """A URL as it is; host[:port] is https, or plain http on loopback (tests)."""
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'http' if _is_loopback(endpoint) else 'https'}://{endpoint}"


@dataclass(frozen=True)
class FaceSubject:
    """Whose face the check is for: the name and ID number the vendor compares the face with."""

    name: str
    id_number: str


@dataclass(frozen=True)
class FaceStart:
    reference: str  # the vendor's handle of the check (Tencent: the BizToken)
    url: str | None = None  # the page the person opens on a phone; None when there is none


@dataclass(frozen=True)
class FaceResult:
    """What the vendor says of a check. ``passed`` is the vendor's word only: whether it passes
    *this* verification (the person, the check) is decided by ``domain.verifications``."""

    outcome: Literal["pending", "passed", "failed"]
    name: str | None = None
    id_number: str | None = None
    extra: str | None = None  # echoed back by the vendor: our verification id
    reason: str | None = None  # the vendor's code, for the log
    # Tencent echoes the person and our verification id with the result (checked against the
    # verification); Aliyun does not: its result is of the person sent at the start, under a
    # CertifyId kept on this verification only (domain.verifications checks the person then).
    echoes_subject: bool = True


class FaceVerifier(Protocol):
    async def start(self, verification_id: str, subject: FaceSubject | None) -> FaceStart:
        """Open a face check with the provider; return its reference and the page to open."""
        ...

    async def result(self, reference: str) -> FaceResult | None:
        """Ask the provider how the check went; ``None`` when the provider reports nothing
        this way (the simulated one is decided through /dev)."""
        ...


class SimulatedFaceVerifier:
    """Development: the check stays pending until ``/dev/identity-verifications/{id}/pass``
    (or ``/fail``) decides it, as a person in front of the camera would."""

    async def start(self, verification_id: str, subject: FaceSubject | None) -> FaceStart:
        return FaceStart(f"sim-{verification_id}")

    async def result(self, reference: str) -> FaceResult | None:
        return None


class DisabledFaceVerifier:
    async def start(self, verification_id: str, subject: FaceSubject | None) -> FaceStart:
        raise errors.face_verification_unavailable()

    async def result(self, reference: str) -> FaceResult | None:
        raise errors.face_verification_unavailable()


def _faceid_refused(vendor_code: str) -> Problem:
    log.error("face_verification_refused", vendor="tencent", vendor_code=vendor_code)
    if vendor_code.startswith(("AuthFailure", "UnauthorizedOperation", "InvalidParameterValue.RuleId")):
        return errors.face_verification_misconfigured()
    return errors.face_verification_unavailable()


def _aliyun_face_refused(vendor_code: str) -> Problem:
    log.error("face_verification_refused", vendor="aliyun", vendor_code=vendor_code)
    if vendor_code in ALIYUN_FACE_MISCONFIGURED or vendor_code in ALIYUN_CREDENTIAL_REFUSALS:
        return errors.face_verification_misconfigured()
    return errors.face_verification_unavailable()


# GetDetectInfoEnhanced on a BizToken that can no longer give a result: the check failed.
FACEID_DEAD_TOKENS = frozenset(
    {"InvalidParameterValue.BizTokenExpired", "InvalidParameterValue.BizTokenIllegal"}
)


class TencentFaceVerifier:
    """腾讯云人脸核身 (FaceID), the H5 flow: ``DetectAuth`` with the person's name and ID number
    gives a BizToken and the page the person opens on a phone; ``GetDetectInfoEnhanced`` on
    that BizToken tells how it went (``Text.ErrCode`` 0: the live face matched that ID)."""

    vendor = "tencent"

    def __init__(self, settings: Settings) -> None:
        _quiet_sdk_logs()
        self.settings = settings
        self.credential = _tencent_credential(settings)
        self.profile = _tencent_profile(settings, settings.faceid_endpoint, "faceid.tencentcloudapi.com")

    async def start(self, verification_id: str, subject: FaceSubject | None) -> FaceStart:
        if subject is None:
            raise errors.face_subject_unknown()

        async def once() -> FaceStart:
            from tencentcloud.faceid.v20180301 import models

            request = models.DetectAuthRequest()
            request.RuleId = self.settings.tencent_faceid_rule_id
            request.IdCard = subject.id_number
            request.Name = subject.name
            request.Extra = verification_id
            if self.settings.face_redirect_url:
                request.RedirectUrl = self.settings.face_redirect_url.replace(
                    "{verification_id}", verification_id
                )
            response = await self._call("DetectAuth", request)
            if not response.BizToken:
                raise VendorOutage("no BizToken")
            return FaceStart(reference=str(response.BizToken), url=response.Url)

        return await call_vendor(self.settings, "tencent-faceid", once, errors.face_verification_unavailable)

    async def result(self, reference: str) -> FaceResult | None:
        async def once() -> FaceResult:
            from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
            from tencentcloud.faceid.v20180301 import models

            request = models.GetDetectInfoEnhancedRequest()
            request.BizToken = reference
            request.RuleId = self.settings.tencent_faceid_rule_id
            request.InfoType = "1"  # the text only: no ID photo, no video
            try:
                response = await self._call("GetDetectInfoEnhanced", request)
            except TencentCloudSDKException as e:
                if str(e.code) in FACEID_DEAD_TOKENS:
                    return FaceResult("failed", reason=str(e.code))
                raise
            text = response.Text
            if text is None or text.ErrCode is None:
                return FaceResult("pending")
            return FaceResult(
                "passed" if text.ErrCode == 0 else "failed",
                name=text.Name,
                id_number=text.IdCard,
                extra=text.Extra,
                reason=str(text.ErrCode),
            )

        return await call_vendor(self.settings, "tencent-faceid", once, errors.face_verification_unavailable)

    async def _call(self, action: str, request: object) -> Any:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.faceid.v20180301.faceid_client_async import FaceidClient

        try:
            async with FaceidClient(self.credential, self.settings.tencent_region, self.profile) as client:
                return await getattr(client, action)(request)
        except TencentCloudSDKException as e:
            vendor_code = str(e.code)
            if _tencent_outage(vendor_code):
                raise VendorOutage(vendor_code) from None
            if vendor_code in FACEID_DEAD_TOKENS:
                raise
            raise _faceid_refused(vendor_code) from None
        except (httpx.TransportError, ValueError, KeyError) as e:  # no connection, timeout, not JSON
            raise VendorOutage(type(e).__name__) from None


# Aliyun cloudauth InitFaceVerify / DescribeFaceVerify: ``Code`` of the answer's body ("200":
# done). The scene, the product or the account is not as the platform's settings say.
ALIYUN_FACE_MISCONFIGURED = frozenset(
    {
        "400",  # 参数不能为空 (a parameter the platform sends is missing)
        "401",  # 参数非法 (a parameter the platform sends is wrong)
        "402",  # 应用配置不存在
        "403",  # 权限不足 / 未开通服务
        "404",  # 认证场景配置不存在 (SceneId)
        "412",  # 欠费
    }
)
# The account's own trouble, the same for every Aliyun product (from the SMS table).
ALIYUN_CREDENTIAL_REFUSALS = frozenset(
    code
    for code, kind in ALIYUN_SMS_REFUSALS.items()
    if kind == "misconfigured" and not code.startswith("isv.")
)
ALIYUN_FACE_OUTAGES = frozenset({"500", "ServiceUnavailable", "InternalError"})


class AliyunFaceVerifier:
    """阿里云金融级实人认证 (cloudauth 2019-03-07), the H5/web flow: ``InitFaceVerify`` with the
    person's name and ID number gives a CertifyId and the page (CertifyUrl) the person opens on
    a phone; ``DescribeFaceVerify`` on that CertifyId tells how it went (``Passed`` T: the live
    face matched the ID sent at the start). Aliyun echoes neither the person nor our id: the
    CertifyId is kept on this verification and the person is checked against the one it was
    started for (``FaceResult.echoes_subject``)."""

    vendor = "aliyun"

    def __init__(self, settings: Settings) -> None:
        from alibabacloud_cloudauth20190307.client import Client

        self.settings = settings
        self.client = Client(_aliyun_config(settings, settings.faceid_endpoint, "cloudauth.aliyuncs.com"))

    async def start(self, verification_id: str, subject: FaceSubject | None) -> FaceStart:
        if subject is None:
            raise errors.face_subject_unknown()

        async def once() -> FaceStart:
            from alibabacloud_cloudauth20190307 import models

            s = self.settings
            request = models.InitFaceVerifyRequest(
                scene_id=int(s.aliyun_face_scene_id or 0),
                outer_order_no=verification_id.replace("-", ""),  # 32 letters and digits
                product_code=s.aliyun_face_product_code,
                cert_type="IDENTITY_CARD",
                cert_name=subject.name,
                cert_no=subject.id_number,
                meta_info=s.aliyun_face_meta_info,
                certify_url_type="H5",
                certify_url_style="L",
                return_url=(s.face_redirect_url or "").replace("{verification_id}", verification_id) or None,
            )
            body = await self._call(lambda rt: self.client.init_face_verify_with_options_async(request, rt))
            found = body.result_object
            if found is None or not found.certify_id:
                raise VendorOutage("no CertifyId")
            return FaceStart(reference=str(found.certify_id), url=found.certify_url)

        return await call_vendor(
            self.settings, "aliyun-cloudauth", once, errors.face_verification_unavailable
        )

    async def result(self, reference: str) -> FaceResult | None:
        async def once() -> FaceResult:
            from alibabacloud_cloudauth20190307 import models

            request = models.DescribeFaceVerifyRequest(
                certify_id=reference, scene_id=int(self.settings.aliyun_face_scene_id or 0)
            )
            body = await self._call(
                lambda rt: self.client.describe_face_verify_with_options_async(request, rt)
            )
            found = body.result_object
            if found is None or found.passed not in ("T", "F") or not found.sub_code:
                return FaceResult("pending", echoes_subject=False)
            return FaceResult(
                "passed" if found.passed == "T" else "failed",
                reason=str(found.sub_code),
                echoes_subject=False,
            )

        return await call_vendor(
            self.settings, "aliyun-cloudauth", once, errors.face_verification_unavailable
        )

    async def _call(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        """The body of a call whose ``Code`` is "200"; the vendor's trouble an outage, a refusal
        mapped (cloudauth refuses in the body of a 200 as well as with a 4xx)."""
        from darabonba.runtime import RuntimeOptions

        try:
            response = await _aliyun_call(lambda: call(RuntimeOptions()))
        except AliyunRejected as e:
            raise _aliyun_face_refused(e.code) from None
        body = response.body
        vendor_code = str(body.code) if body is not None else "None"
        if vendor_code == "200":
            return body
        if vendor_code in ALIYUN_FACE_OUTAGES or vendor_code in ALIYUN_OUTAGES:
            raise VendorOutage(vendor_code)
        raise _aliyun_face_refused(vendor_code)


def sms_provider(name: str | None, settings: Settings) -> SmsProvider:
    if name == "console":
        return ConsoleSms()
    if name == "aliyun":
        return AliyunSms(settings)
    if name == "tencent":
        return TencentSms(settings)
    return DisabledSms()


def enterprise_verifier(name: str | None, settings: Settings) -> EnterpriseVerifier:
    if name == "simulated":
        return SimulatedEnterpriseVerifier()
    if name == "qcc":
        return QccEnterpriseVerifier(settings)
    return DisabledEnterpriseVerifier()


def face_verifier(name: str | None, settings: Settings) -> FaceVerifier:
    if name == "simulated":
        return SimulatedFaceVerifier()
    if name == "tencent":
        return TencentFaceVerifier(settings)
    if name == "aliyun":
        return AliyunFaceVerifier(settings)
    return DisabledFaceVerifier()
