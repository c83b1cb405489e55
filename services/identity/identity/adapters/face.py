"""Face verification (人脸认证) behind an interface. The simulated implementation exists only
with ``ENVIRONMENT=development`` (settings refuse it otherwise); "disabled" answers 503 so a
misconfigured production never pretends. The real vendors (Tencent Cloud FaceID, Aliyun
real-person verification) are called through their own SDKs (vendors.py): a refusal of the
vendor becomes one of identity's problems (errors.py), an outage is tried again a few times
and then answers 503. Secrets are never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import structlog

from common.errors import Problem
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

if TYPE_CHECKING:
    from identity.config import Settings

log = structlog.get_logger(__name__)


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
        quiet_sdk_logs()
        self.settings = settings
        self.credential = tencent_credential(settings)
        self.profile = tencent_profile(settings, settings.faceid_endpoint, "faceid.tencentcloudapi.com")

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
            if tencent_outage(vendor_code):
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
        self.client = Client(aliyun_config(settings, settings.faceid_endpoint, "cloudauth.aliyuncs.com"))

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
            response = await aliyun_call(lambda: call(RuntimeOptions()))
        except AliyunRejected as e:
            raise _aliyun_face_refused(e.code) from None
        body = response.body
        vendor_code = str(body.code) if body is not None else "None"
        if vendor_code == "200":
            return body
        if vendor_code in ALIYUN_FACE_OUTAGES or vendor_code in ALIYUN_OUTAGES:
            raise VendorOutage(vendor_code)
        raise _aliyun_face_refused(vendor_code)


def face_verifier(name: str | None, settings: Settings) -> FaceVerifier:
    if name == "simulated":
        return SimulatedFaceVerifier()
    if name == "tencent":
        return TencentFaceVerifier(settings)
    if name == "aliyun":
        return AliyunFaceVerifier(settings)
    return DisabledFaceVerifier()
