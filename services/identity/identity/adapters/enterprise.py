"""Enterprise verification (the government's unified authentication platform) behind an
interface. The simulated implementation exists only with ``ENVIRONMENT=development`` (settings
refuse it otherwise); "disabled" answers 503 so a misconfigured production never pretends. The
real vendor (企查查) is called over HTTP: a refusal of the vendor becomes one of identity's
problems (errors.py), an outage is tried again a few times and then answers 503 (vendors.py).
Secrets are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx
import structlog

from identity import errors
from identity.adapters.vendors import VendorOutage, base_url, call_vendor

if TYPE_CHECKING:
    from identity.config import Settings

log = structlog.get_logger(__name__)


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
        self.base_url = base_url(settings.qcc_endpoint or "https://api.qichacha.com")

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


def enterprise_verifier(name: str | None, settings: Settings) -> EnterpriseVerifier:
    if name == "simulated":
        return SimulatedEnterpriseVerifier()
    if name == "qcc":
        return QccEnterpriseVerifier(settings)
    return DisabledEnterpriseVerifier()
