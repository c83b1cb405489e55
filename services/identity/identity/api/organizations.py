"""The caller's organisation: 企业信息认证, 指定经办人, 支付认证 (API.md identity rows)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser
from common.openapi import problems
from identity import errors
from identity.api.auth import SMS_CODE
from identity.deps import Ctx, LockedMembership, ReadMembership
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
from identity.service import auth as auth_service
from identity.service import organizations as service

router = APIRouter(prefix="/api/v1/me/organization", tags=["organization"])


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
async def my_organization(member: ReadMembership, session: ReadSessionDep) -> OrganizationDetailOut:
    _user, org = member
    agent = await service.current_agent(session, org.id)
    base = OrganizationOut.model_validate(org)
    return OrganizationDetailOut(
        **base.model_dump(),
        certified_at=org.certified_at,
        agent=service.agent_out(agent) if agent else None,
        bank_account_set=await service.has_bank_account(session, org.id),
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
    numbers = service.certifiable(user, org, body)
    await auth_service.check_sms_code_and_commit(session, ctx, user.phone, "certify", body.sms_code)
    await service.certify(session, ctx, org, body, numbers)
    await session.commit()
    out = OrganizationOut.model_validate(org)
    return CertificationOut(
        organization=out,
        access_token=auth_service.access_token_for(ctx, user, org, principal.session_id or ""),
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
async def get_agent(principal: CurrentUser, session: ReadSessionDep) -> AgentOut:
    _user, org = await service.owner(session, principal, not_suspended=False)
    return service.agent_out(await service.agent(session, org))


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
    owner, org = await service.owner(session, principal, lock=True)
    agent = await service.designate_agent(session, ctx, owner, org, body)
    await session.commit()
    return service.agent_out(agent)


@router.delete(
    "/agent",
    status_code=204,
    summary="取消经办人",
    description="企业法人取消经办人：经办人的账号停用，其登录在各服务数秒内失效。",
    response_description="已取消经办人",
    responses=problems(*OWNER, errors.agent_not_set),
)
async def delete_agent(principal: CurrentUser, session: SessionDep) -> Response:
    _user, org = await service.owner(session, principal, not_suspended=False, lock=True)
    await service.remove_agent(session, org)
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
async def get_bank_account(principal: CurrentUser, session: ReadSessionDep) -> BankAccountOut:
    _user, org = await service.owner(session, principal, not_suspended=False)
    return service.bank_account_out(await service.bank_account(session, org))


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
    owner, org = await service.owner(session, principal, lock=True)
    row = await service.save_bank_account(session, owner, org, body)
    await session.commit()
    return service.bank_account_out(row)
