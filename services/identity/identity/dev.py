"""Development-only routes (mounted only when ENVIRONMENT=development): what end-to-end
tests and client developers need to get past the captcha, SMS codes and simulated checks."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from common.app import SessionDep
from common.errors import not_found
from common.openapi import problems
from identity import errors
from identity.deps import Id
from identity.models import Captcha, DevSmsMessage, IdentityVerification
from identity.service import verifications

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])


class CaptchaAnswer(BaseModel):
    answer: str


class LatestSms(BaseModel):
    code: str
    purpose: str
    sent_at: datetime


@router.get(
    "/captcha/{captcha_id}",
    response_model=CaptchaAnswer,
    summary="（开发）图形验证码答案",
    description="仅开发环境：读出一张图形验证码的答案，供自动化测试使用。生产环境不存在此接口。",
    response_description="图形验证码答案",
    responses=problems(not_found("图形验证码")),
)
async def captcha_answer(captcha_id: Id, session: SessionDep) -> CaptchaAnswer:
    row = await session.get(Captcha, captcha_id)
    if row is None:
        raise not_found("图形验证码")
    return CaptchaAnswer(answer=row.answer)


@router.get(
    "/sms-codes/latest",
    response_model=LatestSms,
    summary="（开发）最近发送的短信验证码",
    description="仅开发环境：读出发给某手机号的最近一条短信验证码（开发环境不真正发送短信）。生产环境不存在此接口。",
    response_description="最近一条验证码",
    responses=problems(not_found("短信记录")),
)
async def latest_sms(session: SessionDep, phone: str = Query(min_length=11, max_length=11)) -> LatestSms:
    row = (
        await session.exec(
            select(DevSmsMessage)
            .where(DevSmsMessage.phone == phone)
            .order_by(col(DevSmsMessage.id).desc())
            .limit(1)
        )
    ).first()
    if row is None:
        raise not_found("短信记录")
    assert row.sent_at is not None
    return LatestSms(code=row.code, purpose=row.purpose, sent_at=row.sent_at)


class VerificationDecided(BaseModel):
    verification_id: str
    state: str


async def _decide(session: SessionDep, verification_id: str, state: str) -> VerificationDecided:
    """The simulated face check decides, once: only a pending check can pass or fail."""
    if not await verifications.decide(session, verification_id, state):
        await session.rollback()
        if await session.get(IdentityVerification, verification_id) is None:
            raise not_found("人脸认证记录")
        raise errors.verification_not_pending()
    await session.commit()
    return VerificationDecided(verification_id=verification_id, state=state)


@router.post(
    "/identity-verifications/{verification_id}/pass",
    response_model=VerificationDecided,
    summary="（开发）模拟人脸认证通过",
    description="仅开发环境：让一项认证中的人脸认证通过（模拟服务商）。生产环境不存在此接口。",
    response_description="判定后的认证",
    responses=problems(not_found("人脸认证记录"), errors.verification_not_pending),
)
async def pass_verification(verification_id: Id, session: SessionDep) -> VerificationDecided:
    return await _decide(session, verification_id, "passed")


@router.post(
    "/identity-verifications/{verification_id}/fail",
    response_model=VerificationDecided,
    summary="（开发）模拟人脸认证失败",
    description="仅开发环境：让一项认证中的人脸认证失败（模拟服务商）。生产环境不存在此接口。",
    response_description="判定后的认证",
    responses=problems(not_found("人脸认证记录"), errors.verification_not_pending),
)
async def fail_verification(verification_id: Id, session: SessionDep) -> VerificationDecided:
    return await _decide(session, verification_id, "failed")
