"""The outside world behind interfaces: SMS gateway, enterprise verification (the
government's unified authentication platform) and face verification (人脸认证).

The development implementations exist only with ``ENVIRONMENT=development`` (settings refuse
them otherwise); "disabled" answers 503 so a misconfigured production never pretends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from common.masking import mask_phone
from identity import errors
from identity.models import DevSmsMessage

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


@dataclass(frozen=True)
class EnterpriseCheck:
    ok: bool
    reason: str | None = None


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


class FaceVerifier(Protocol):
    async def start(self, verification_id: str, user_id: str) -> str:
        """Open a face check with the provider; return its reference."""
        ...


class SimulatedFaceVerifier:
    """Development: the check stays pending until ``/dev/identity-verifications/{id}/pass``
    (or ``/fail``) decides it, as a person in front of the camera would."""

    async def start(self, verification_id: str, user_id: str) -> str:
        return f"sim-{verification_id}"


class DisabledFaceVerifier:
    async def start(self, verification_id: str, user_id: str) -> str:
        raise errors.face_verification_unavailable()


def sms_provider(name: str | None) -> SmsProvider:
    return ConsoleSms() if name == "console" else DisabledSms()


def enterprise_verifier(name: str | None) -> EnterpriseVerifier:
    return SimulatedEnterpriseVerifier() if name == "simulated" else DisabledEnterpriseVerifier()


def face_verifier(name: str | None) -> FaceVerifier:
    return SimulatedFaceVerifier() if name == "simulated" else DisabledFaceVerifier()
