"""The SMS gateway behind an interface. The development implementation (the console) exists
only with ``ENVIRONMENT=development`` (settings refuse it otherwise); "disabled" answers 503 so
a misconfigured production never pretends. The real vendors (Aliyun and Tencent Cloud SMS) are
called through their own SDKs (vendors.py): a refusal of the vendor becomes one of identity's
problems (errors.py), an outage is tried again a few times and then answers 503. Neither SMS
codes nor secrets are logged; a phone is logged masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

import httpx
import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from common.errors import Problem
from common.masking import mask_phone
from identity import errors
from identity.adapters.vendors import (
    ALIYUN_CREDENTIAL_REFUSALS,
    ALIYUN_OUTAGES,
    AliyunRejected,
    VendorOutage,
    aliyun_call,
    aliyun_config,
    call_vendor,
    quiet_sdk_logs,
    tencent_credential,
    tencent_outage,
    tencent_profile,
)
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
    **dict.fromkeys(ALIYUN_CREDENTIAL_REFUSALS, "misconfigured"),
}


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


class AliyunSms(VendorSms):
    """阿里云短信服务 (dysmsapi 2017-05-25 SendSms), through the SDK's async calls. The template
    of a purpose has one variable, ``${code}``."""

    vendor = "aliyun"

    def __init__(self, settings: Settings) -> None:
        from alibabacloud_dysmsapi20170525.client import Client

        self.settings = settings
        self.client = Client(aliyun_config(settings, settings.sms_endpoint, "dysmsapi.aliyuncs.com"))

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
            response = await aliyun_call(
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


class TencentSms(VendorSms):
    """腾讯云短信 (SendSms 2021-01-11), through the SDK's async client. The template of a purpose
    has one variable, ``{1}``: the code."""

    vendor = "tencent"

    def __init__(self, settings: Settings) -> None:
        quiet_sdk_logs()
        self.settings = settings
        self.credential = tencent_credential(settings)
        self.profile = tencent_profile(settings, settings.sms_endpoint, "sms.tencentcloudapi.com")

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
            if tencent_outage(vendor_code):
                raise VendorOutage(vendor_code) from None
            raise _sms_refused(self.vendor, vendor_code, TENCENT_SMS_REFUSALS, phone) from None
        except (httpx.TransportError, ValueError, KeyError) as e:  # no connection, timeout, not JSON
            raise VendorOutage(type(e).__name__) from None
        statuses = response.SendStatusSet or []
        vendor_code = str(statuses[0].Code) if statuses else "None"
        if vendor_code == "Ok":
            return
        if tencent_outage(vendor_code):
            raise VendorOutage(vendor_code)
        raise _sms_refused(self.vendor, vendor_code, TENCENT_SMS_REFUSALS, phone)


def sms_provider(name: str | None, settings: Settings) -> SmsProvider:
    if name == "console":
        return ConsoleSms()
    if name == "aliyun":
        return AliyunSms(settings)
    if name == "tencent":
        return TencentSms(settings)
    return DisabledSms()
