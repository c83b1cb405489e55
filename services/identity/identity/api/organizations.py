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
from common.openapi import problems
from common.timers import utcnow
from identity import errors
from identity.api.auth import SMS_CODE
from identity.deps import Ctx, LockedMembership, Membership
from identity.domain import organizations as org_domain
from identity.domain import reference as reference_domain
from identity.models import BankAccount, User
from identity.schemas.auth import OrganizationOut
from identity.schemas.organizations import (
    AgentIn,
    AgentOut,
    BankAccountIn,
    BankAccountOut,
    CertificationIn,
    CertificationOut,
    OrganizationDetailOut,
)
from identity.service import auth as service
from identity.service import organizations as org_service
from identity.service.reference import reference

router = APIRouter(prefix="/api/v1/me/organization", tags=["organization"])


def invalid_fields(fields: list[dict[str, str]]) -> Problem:
    return errors.invalid(fields, org_domain.errors_detail(fields))


def uscc_taken() -> Problem:
    return errors.uscc_taken()


def phone_taken() -> Problem:
    return errors.phone_taken()


def agent_not_set() -> Problem:
    return errors.agent_not_set()


MEMBER = (errors.account_gone, errors.organization_not_found)
OWNER = (*MEMBER, errors.owner_required, errors.certification_required)
SUSPENDED = errors.organization_suspended("资料不实")


# --- the organisation --------------------------------------------------------------------------


@router.get(
    "",
    response_model=OrganizationDetailOut,
    summary="我的企业信息",
    description="企业法人或经办人查看本单位信息：认证状态、统一社会信用代码、法人（证件号码脱敏）、经办人与是否已填写银行账户。",
    response_description="本单位信息",
    responses=problems(*MEMBER),
)
async def my_organization(member: Membership, session: SessionDep) -> OrganizationDetailOut:
    _user, org = member
    agent = await org_service.current_agent(session, org.id)
    base = OrganizationOut.model_validate(org)
    return OrganizationDetailOut(
        **base.model_dump(),
        certified_at=org.certified_at,
        agent=org_service.agent_out(agent) if agent else None,
        bank_account_set=await org_service.has_bank_account(session, org.id),
    )


@router.post(
    "/certification",
    response_model=CertificationOut,
    summary="企业信息认证",
    description=(
        "企业法人（注册人）以企业名称、统一社会信用代码、法人姓名与证件号码及短信验证码认证本单位，"
        "身份选企业或服务机构；信息经企业登记信息核验一致后认证通过，一个统一社会信用代码只能认证一个"
        "账号。认证后发布 organization_certified 事件，并返回带新能力的访问令牌（其他服务据此放行）。"
    ),
    response_description="已认证的组织与新的访问令牌",
    responses=problems(
        *MEMBER,
        errors.owner_required,
        SUSPENDED,
        errors.already_certified,
        *SMS_CODE,
        errors.uscc_taken,
        errors.enterprise_verification_failed("企业信息与登记信息不一致"),
        errors.enterprise_verification_unavailable,
        errors.enterprise_verification_misconfigured,
        errors.enterprise_verification_quota_exceeded,
    ),
)
async def certify(
    body: CertificationIn, principal: CurrentUser, member: LockedMembership, session: SessionDep, ctx: Ctx
) -> CertificationOut:
    user, org = member
    if user.role != "owner":
        raise errors.owner_required()
    numbers, bad = org_domain.certification_errors(
        agreed=body.agreed,
        uscc=body.uscc,
        id_type=body.legal_rep_id_type,
        id_number=body.legal_rep_id_number,
    )
    if bad:
        raise invalid_fields(bad)
    assert numbers is not None
    if org.suspended:
        raise errors.organization_suspended(org.suspended_reason)
    if org.certified:
        raise errors.already_certified()
    await service.check_sms_code_and_commit_failures(session, ctx, user.phone, "certify", body.sms_code)
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
        raise errors.enterprise_verification_failed(reason, check.fields)
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
    out = OrganizationOut.model_validate(org)
    return CertificationOut(
        organization=out,
        access_token=service.access_token_for(ctx, user, org, principal.session_id or ""),
        expires_in=ctx.settings.access_ttl_seconds,
    )


# --- the agent (经办人) ---------------------------------------------------------------------------


@router.get(
    "/agent",
    response_model=AgentOut,
    summary="查看经办人",
    description="企业法人查看本单位当前的经办人（姓名、手机号、证件号码脱敏）。",
    response_description="当前经办人",
    responses=problems(*OWNER, errors.agent_not_set),
)
async def get_agent(principal: CurrentUser, session: SessionDep) -> AgentOut:
    _user, org = await org_service.owner(session, principal, not_suspended=False)
    agent = await org_service.current_agent(session, org.id)
    if agent is None:
        raise agent_not_set()
    return org_service.agent_out(agent)


@router.put(
    "/agent",
    response_model=AgentOut,
    summary="指定或更换经办人",
    description=(
        "已认证企业的法人指定经办人（姓名、证件、手机号），经办人以该手机号登录代为办理业务；"
        "更换为另一手机号时，原经办人的账号停用、登录随即失效。被暂停的单位不能指定。"
    ),
    response_description="指定后的经办人",
    responses=problems(*OWNER, SUSPENDED, errors.phone_taken),
)
async def put_agent(body: AgentIn, principal: CurrentUser, session: SessionDep, ctx: Ctx) -> AgentOut:
    owner, org = await org_service.owner(session, principal, lock=True)
    bad: list[dict[str, str]] = []
    id_number = ""
    try:
        id_number = validate_id_number(body.id_type, body.id_number, field="id_number")
    except InvalidNumber as exc:
        bad.append(org_domain.field_error(exc))
    if why := org_domain.agent_phone_problem(body.phone, owner.phone):
        bad.append({"field": "phone", "message": why})
    if bad:
        raise invalid_fields(bad)
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
            await org_service.deactivate(session, previous, service.AGENT_REMOVED)
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


@router.delete(
    "/agent",
    status_code=204,
    summary="取消经办人",
    description="企业法人取消经办人：经办人的账号停用，其登录在各服务数秒内失效。",
    response_description="已取消经办人",
    responses=problems(*OWNER, errors.agent_not_set),
)
async def delete_agent(principal: CurrentUser, session: SessionDep) -> Response:
    _user, org = await org_service.owner(session, principal, not_suspended=False, lock=True)
    agent = await org_service.current_agent(session, org.id)
    if agent is None:
        raise agent_not_set()
    await org_service.deactivate(session, agent, service.AGENT_REMOVED)
    await session.commit()
    return Response(status_code=204)


# --- the bank account (支付认证) -------------------------------------------------------------------


@router.get(
    "/bank-account",
    response_model=BankAccountOut,
    summary="查看银行账户（支付认证）",
    description="企业法人查看本单位用于收付款的银行账户（支付认证）。",
    response_description="本单位的银行账户",
    responses=problems(*OWNER, errors.bank_account_not_set),
)
async def get_bank_account(principal: CurrentUser, session: SessionDep) -> BankAccountOut:
    _user, org = await org_service.owner(session, principal, not_suspended=False)
    row = await session.get(BankAccount, org.id)
    if row is None:
        raise errors.bank_account_not_set()
    return org_service.bank_account_out(row)


@router.put(
    "/bank-account",
    response_model=BankAccountOut,
    summary="填写或修改银行账户（支付认证）",
    description=(
        "已认证企业的法人填写或修改本单位银行账户（开户名、开户银行、开户所在地、开户支行、账号）。"
        "银行开户名须与认证的企业名称一致（括号全角半角、空格不计）；开户所在地须为行政区划数据中的"
        "地级市或直辖市（`GET /reference/regions` 的 `full_name`）；支行数据认识的开户支行须在该地、属该开户银行"
        "（`GET /reference/bank-branches` 的 `name`；支行数据为完整联行号目录时，目录外的支行也不收），"
        "否则 422，`errors[]` 指明字段。保存的所在地和支行名称按参考数据的写法。"
        "有变化时发布 bank_account_changed 事件（支付服务据此更新收款账户）。被暂停的单位不能修改。"
    ),
    response_description="保存后的银行账户",
    responses=problems(*OWNER, SUSPENDED),
)
async def put_bank_account(
    body: BankAccountIn, principal: CurrentUser, session: SessionDep
) -> BankAccountOut:
    owner, org = await org_service.owner(session, principal, lock=True)
    number = org_domain.normalize_account_number(body.account_number)
    bad: list[dict[str, str]] = []
    if why := org_domain.account_name_problem(body.account_name, org.name):
        bad.append({"field": "account_name", "message": why})
    if why := org_domain.account_number_problem(number):
        bad.append({"field": "account_number", "message": why})
    choice, wrong = reference_domain.bank_reference_errors(
        reference(), bank_name=body.bank_name, bank_region=body.bank_region, branch_name=body.branch_name
    )
    bad.extend(wrong)
    if bad or choice is None:
        raise invalid_fields(bad)
    values = {  # the region and branch as the reference data spells them
        "account_name": body.account_name,
        "bank_name": choice.branch.bank,
        "bank_region": choice.region.full_name,
        "branch_name": choice.branch.name,
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
