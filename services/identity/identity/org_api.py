"""The caller's organisation: 企业信息认证, 指定经办人, 支付认证 (API.md identity rows)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.exc import IntegrityError

from common.app import SessionDep
from common.auth import CurrentUser
from common.bus import publish
from common.errors import Problem
from common.events import BankAccountChanged, OrganizationCertified
from common.idnumbers import InvalidNumber, validate_id_number
from common.masking import mask_id_number
from common.timers import utcnow
from identity import org_domain, org_service, service
from identity.deps import Ctx
from identity.models import BankAccount, User
from identity.org_schemas import (
    AgentIn,
    AgentOut,
    BankAccountIn,
    BankAccountOut,
    CertificationIn,
    CertificationOut,
    OrganizationDetailOut,
)
from identity.views import organization_out

router = APIRouter(prefix="/api/v1/me/organization", tags=["organization"])


def invalid_fields(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "validation_error", org_domain.errors_detail(errors), errors=errors)


def uscc_taken() -> Problem:
    return Problem(409, "uscc_taken", "该统一社会信用代码已被其他账号认证，如有疑问请联系平台申诉")


def phone_taken() -> Problem:
    return Problem(409, "phone_taken", "该手机号已被其他账号使用，请更换经办人手机号")


def agent_not_set() -> Problem:
    return Problem(404, "agent_not_set", "尚未指定经办人")


# --- the organisation --------------------------------------------------------------------------


@router.get("", response_model=OrganizationDetailOut, summary="我的企业信息")
async def my_organization(principal: CurrentUser, session: SessionDep) -> OrganizationDetailOut:
    _user, org = await org_service.member(session, principal)
    agent = await org_service.current_agent(session, org.id)
    base = organization_out(org)
    assert base is not None
    return OrganizationDetailOut(
        **base.model_dump(),
        certified_at=org.certified_at,
        agent=org_service.agent_out(agent) if agent else None,
        bank_account_set=await org_service.has_bank_account(session, org.id),
    )


@router.post("/certification", response_model=CertificationOut, summary="企业信息认证")
async def certify(
    body: CertificationIn, principal: CurrentUser, session: SessionDep, ctx: Ctx
) -> CertificationOut:
    user, org = await org_service.member(session, principal, lock=True)
    if user.role != "owner":
        raise org_service.owner_required()
    numbers, errors = org_domain.certification_errors(
        agreed=body.agreed,
        uscc=body.uscc,
        id_type=body.legal_rep_id_type,
        id_number=body.legal_rep_id_number,
    )
    if errors:
        raise invalid_fields(errors)
    assert numbers is not None
    if org.suspended:
        raise org_service.suspended_problem(org)
    if org.certified:
        raise Problem(409, "already_certified", "贵单位已完成企业信息认证，无需重复认证")
    await service.check_sms_code(session, ctx, user.phone, "certify", body.sms_code)
    if await org_service.uscc_holder(session, numbers.uscc) is not None:
        await session.rollback()
        raise uscc_taken()
    check = await ctx.enterprise_verifier.verify(
        name=body.name,
        uscc=numbers.uscc,
        legal_rep_name=body.legal_rep_name,
        id_type=body.legal_rep_id_type,
        id_number=numbers.legal_rep_id_number,
    )
    if not check.ok:
        await session.rollback()
        reason = check.reason or "企业信息与登记信息不一致"
        raise Problem(422, "enterprise_verification_failed", f"企业信息核验未通过：{reason}", reason=reason)
    now = utcnow()
    org.name = body.name
    org.uscc = numbers.uscc
    org.kind = body.role
    org.certified_at = now
    org.legal_rep_name = body.legal_rep_name
    org.legal_rep_id_type = body.legal_rep_id_type
    org.legal_rep_id_enc = ctx.cipher.encrypt(
        numbers.legal_rep_id_number, context=org_domain.LEGAL_REP_ID_CONTEXT
    )
    org.legal_rep_id_masked = mask_id_number(numbers.legal_rep_id_number)
    org.updated_at = now
    session.add(org)
    try:
        await session.flush()  # the partial unique index decides a race for one USCC
    except IntegrityError:
        await session.rollback()
        raise uscc_taken() from None
    await publish(
        session,
        OrganizationCertified(org_id=org.id, name=org.name, uscc=numbers.uscc, kind=body.role),
        aggregate_id=org.id,
    )
    await session.commit()
    out = organization_out(org)
    assert out is not None
    return CertificationOut(
        organization=out,
        access_token=service.access_token_for(ctx, user, org, principal.session_id or ""),
        expires_in=ctx.settings.access_ttl_seconds,
    )


# --- the agent (经办人) ---------------------------------------------------------------------------


@router.get("/agent", response_model=AgentOut, summary="查看经办人")
async def get_agent(principal: CurrentUser, session: SessionDep) -> AgentOut:
    _user, org = await org_service.owner(session, principal, not_suspended=False)
    agent = await org_service.current_agent(session, org.id)
    if agent is None:
        raise agent_not_set()
    return org_service.agent_out(agent)


@router.put("/agent", response_model=AgentOut, summary="指定或更换经办人")
async def put_agent(body: AgentIn, principal: CurrentUser, session: SessionDep, ctx: Ctx) -> AgentOut:
    owner, org = await org_service.owner(session, principal, lock=True)
    errors: list[dict[str, str]] = []
    id_number = ""
    try:
        id_number = validate_id_number(body.id_type, body.id_number, field="id_number")
    except InvalidNumber as exc:
        errors.append(org_domain.field_error(exc))
    if why := org_domain.agent_phone_problem(body.phone, owner.phone):
        errors.append({"field": "phone", "message": why})
    if errors:
        raise invalid_fields(errors)
    id_enc = ctx.cipher.encrypt(id_number, context=org_domain.AGENT_ID_CONTEXT)
    id_masked = mask_id_number(id_number)
    previous = await org_service.current_agent(session, org.id)
    if previous is not None and previous.phone == body.phone:
        agent = previous  # the same person's details corrected: their sessions go on
        agent.name = body.name
    else:
        if await service.active_user_by_phone(session, body.phone) is not None:
            raise phone_taken()
        if previous is not None:
            await org_service.deactivate(session, previous)
        agent = User(
            phone=body.phone,
            name=body.name,
            role="agent",
            organization_id=org.id,
            created_by=owner.id,
        )
    agent.id_type = body.id_type
    agent.id_number_enc = id_enc
    agent.id_number_masked = id_masked
    session.add(agent)
    try:
        await session.flush()  # the unique index on active phones decides a race
    except IntegrityError:
        await session.rollback()
        raise phone_taken() from None
    await session.commit()
    return org_service.agent_out(agent)


@router.delete("/agent", status_code=204, summary="取消经办人")
async def delete_agent(principal: CurrentUser, session: SessionDep) -> Response:
    _user, org = await org_service.owner(session, principal, not_suspended=False, lock=True)
    agent = await org_service.current_agent(session, org.id)
    if agent is None:
        raise agent_not_set()
    await org_service.deactivate(session, agent)
    await session.commit()
    return Response(status_code=204)


# --- the bank account (支付认证) -------------------------------------------------------------------


@router.get("/bank-account", response_model=BankAccountOut, summary="查看银行账户（支付认证）")
async def get_bank_account(principal: CurrentUser, session: SessionDep) -> BankAccountOut:
    _user, org = await org_service.owner(session, principal, not_suspended=False)
    row = await session.get(BankAccount, org.id)
    if row is None:
        raise Problem(404, "bank_account_not_set", "尚未填写银行账户信息，请先完成支付认证")
    return org_service.bank_account_out(row)


@router.put("/bank-account", response_model=BankAccountOut, summary="填写或修改银行账户（支付认证）")
async def put_bank_account(
    body: BankAccountIn, principal: CurrentUser, session: SessionDep
) -> BankAccountOut:
    owner, org = await org_service.owner(session, principal, lock=True)
    number = org_domain.normalize_account_number(body.account_number)
    errors: list[dict[str, str]] = []
    if why := org_domain.account_name_problem(body.account_name, org.name):
        errors.append({"field": "account_name", "message": why})
    if why := org_domain.account_number_problem(number):
        errors.append({"field": "account_number", "message": why})
    if errors:
        raise invalid_fields(errors)
    values = {
        "account_name": body.account_name,
        "bank_name": body.bank_name,
        "bank_region": body.bank_region,
        "branch_name": body.branch_name,
        "account_number": number,
    }
    row = await session.get(BankAccount, org.id)
    if row is not None and all(getattr(row, k) == v for k, v in values.items()):
        return org_service.bank_account_out(row)  # nothing changed: no event either
    row = row or BankAccount.model_validate({"organization_id": org.id, **values})
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    row.updated_by = owner.id
    session.add(row)
    await session.flush()
    await publish(session, BankAccountChanged(org_id=org.id, **values), aggregate_id=org.id)
    await session.commit()
    return org_service.bank_account_out(row)
