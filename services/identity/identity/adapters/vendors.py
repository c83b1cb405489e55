"""Calling the real vendors, what the SMS, enterprise and face families share: a call tried
again a few times while the vendor is out (no connection, a timeout, a 5xx) and then answered
503 (:class:`VendorOutage`, :func:`call_vendor`), a refusal of the vendor left to the family to
make one of identity's problems (errors.py); the Aliyun and Tencent Cloud SDKs' configuration,
credentials and errors; an endpoint given as host[:port] (plain http on loopback, in tests).
Secrets are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common.errors import Problem

if TYPE_CHECKING:
    from identity.config import Settings

log = structlog.get_logger(__name__)


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


# The vendor's own trouble: tried again, then 503.
ALIYUN_OUTAGES = frozenset({"isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "isp.UNKNOWN", "ServiceUnavailable"})
# The account's own trouble (its AccessKey, its RAM rights), the same for every Aliyun product.
ALIYUN_CREDENTIAL_REFUSALS = frozenset(
    {
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "Forbidden.RAM",
    }
)


def aliyun_config(settings: Settings, endpoint: str | None, default: str) -> Any:
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
        protocol="http" if is_loopback(host) else "https",
        read_timeout=timeout_ms,
        connect_timeout=timeout_ms,
    )


class AliyunRejected(Exception):
    """An Aliyun API rejected the request (its error code in ``code``): the vendor's answer,
    not a rule of ours; the caller maps it to its problem."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def aliyun_call(call: Callable[[], Awaitable[T]]) -> T:
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


def tencent_outage(code: str) -> bool:
    """The vendor's own trouble (a non-200 is reported by the SDK as ServerNetworkError)."""
    return code in ("ServerNetworkError", "ClientNetworkError", "RequestLimitExceeded") or code.startswith(
        "InternalError"
    )


def tencent_profile(settings: Settings, endpoint: str | None, default: str) -> object:
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    host = endpoint or default
    return ClientProfile(
        httpProfile=HttpProfile(
            protocol="http" if is_loopback(host) else "https",
            endpoint=host,
            reqTimeout=settings.vendor_timeout_seconds,
        )
    )


def quiet_sdk_logs() -> None:
    """Tencent's SDK logs each request and answer at DEBUG (the SMS code, the ID number and name
    of a face check among them): never below WARNING, whatever the service's log level."""
    logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)


def tencent_credential(settings: Settings) -> object:
    from tencentcloud.common.credential import Credential

    assert settings.tencent_secret_id and settings.tencent_secret_key
    return Credential(
        settings.tencent_secret_id.get_secret_value(), settings.tencent_secret_key.get_secret_value()
    )


def is_loopback(host: str) -> bool:
    name = host.split("://")[-1].rsplit(":", 1)[0]
    return name in ("127.0.0.1", "localhost", "::1", "[::1]")


def base_url(endpoint: str) -> str:
    """A URL as it is; host[:port] is https, or plain http on loopback (tests)."""
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'http' if is_loopback(endpoint) else 'https'}://{endpoint}"
