"""The contracts' public routes (the order's contract, drafting, review, signing, the PDF,
staff's list and termination): deps -> service -> one commit -> Out."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import AdminUser, CurrentUser, StaffUser
from common.openapi import problems
from common.pagination import Paging, paginate
from contracts import document, errors
from contracts.api import ACTIVE, VERIFICATION
from contracts.deps import Ctx, OrderContract, ReadableContract, ShownContract
from contracts.domain.contracts import Action, State
from contracts.models import Contract, ContractDocument, ContractVersion
from contracts.schemas.contracts import (
    ContractIn,
    ContractOut,
    ContractPage,
    ContractReasonIn,
    ContractVersionOut,
    ContractVersionsOut,
)
from contracts.schemas.seals import VerificationTokenIn
from contracts.service import contracts as service

# The states as a literal (an enum would become a schema named "State" in the merged OpenAPI).
StateName = Literal[
    "drafting", "pending_review", "returned", "agreed", "signed", "terminating", "voided", "terminated"
]
assert set(get_args(StateName)) == {s.value for s in State}


UNPRINTABLE_TERMS = errors.text_not_printable("合同文本", [("terms", "合同条款", ["\u202e"])])

router = APIRouter(prefix="/api/v1", tags=["contracts"])
admin_router = APIRouter(prefix="/api/v1/admin/contracts", tags=["contracts-admin"])


@router.get(
    "/orders/{order_id}/contract",
    response_model=ContractOut,
    summary="订单合同",
    description=(
        "订单的企业、服务机构或平台人员查看该订单的合同：状态、合同金额、服务券抵扣、实付金额、定金和尾款（分）、"
        "合同条款、双方签署情况及调用者当前可做的操作（actions）。服务机构接单后才有合同；其他单位为 404。"
    ),
    response_description="订单的合同",
    responses=problems(errors.contract_not_found),
)
async def order_contract(contract: OrderContract, session: ReadSessionDep, user: CurrentUser) -> ContractOut:
    """The order's contract (either party, or staff)."""
    return await service.contract_out(session, contract, user)


@router.get(
    "/contracts/{contract_id}",
    response_model=ContractOut,
    summary="查看合同",
    description="合同的企业、服务机构或平台人员查看合同（内容同“订单合同”）；其他单位为 404。",
    response_description="合同",
    responses=problems(errors.contract_not_found),
)
async def get_contract(contract: ShownContract, session: ReadSessionDep, user: CurrentUser) -> ContractOut:
    return await service.contract_out(session, contract, user)


@router.get(
    "/contracts/{contract_id}/versions",
    response_model=ContractVersionsOut,
    summary="合同版本记录",
    description="合同双方或平台人员查看服务机构每次提交的合同版本（先提交的在前）：金额、条款，以及企业退回修改的原因和时间。",
    response_description="合同的各个版本（分页）",
    responses=problems(errors.contract_not_found),
)
async def versions(contract: ShownContract, session: ReadSessionDep, paging: Paging) -> ContractVersionsOut:
    """Every version the provider submitted, oldest first, with why it was returned."""
    query = (
        select(ContractVersion)
        .where(col(ContractVersion.contract_id) == contract.id)
        .order_by(col(ContractVersion.version))
    )
    total, rows = await paginate(session, query, paging)
    return ContractVersionsOut(
        contract_id=contract.id,
        items=[ContractVersionOut.model_validate(r) for r in rows],
        total=total,
        **paging.echo(),
    )


@router.put(
    "/contracts/{contract_id}",
    response_model=ContractOut,
    summary="拟定合同",
    description=(
        "服务机构在合同待拟定或退回修改时填写合同总金额、定金（分）和合同条款；服务券抵扣和企业实付金额由平台"
        "按服务券比例和最高补贴计算，定金不能超过实付金额。企业同意后合同不可修改；合同字体无法显示的字符被拒绝"
        "（422 text_not_printable）。未被暂停的服务机构才能修改。"
    ),
    response_description="修改后的合同",
    responses=problems(
        errors.contract_not_found,
        errors.wrong_party(Action.EDIT),
        *ACTIVE,
        errors.contract_immutable(State.AGREED),
        errors.contract_state(State.VOIDED, Action.EDIT),
        errors.document_unavailable,
        UNPRINTABLE_TERMS,
        errors.total_invalid,
        errors.deposit_invalid,
        errors.deposit_above_payable,
    ),
)
async def edit(
    body: ContractIn, contract: ReadableContract, session: SessionDep, user: CurrentUser, ctx: Ctx
) -> ContractOut:
    """The provider sets total, deposit and terms while drafting or returned; terms the
    contract's font cannot show are refused (422 ``text_not_printable``)."""
    updated = await service.edit(session, ctx, contract.id, user, body)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post(
    "/contracts/{contract_id}/submit",
    response_model=ContractOut,
    summary="提交合同",
    description=(
        "服务机构把拟定好的合同提交企业确认，合同变为待确认并记为一个新版本（事件 contracts.contract_submitted）；"
        "须先填写合同金额、定金和条款。"
    ),
    response_description="提交后的合同（待确认）",
    responses=problems(
        errors.contract_not_found,
        errors.wrong_party(Action.SUBMIT),
        *ACTIVE,
        errors.contract_state(State.AGREED, Action.SUBMIT),
        errors.contract_incomplete,
    ),
)
async def submit(contract: ReadableContract, session: SessionDep, user: CurrentUser) -> ContractOut:
    updated = await service.submit(session, contract.id, user)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post(
    "/contracts/{contract_id}/agree",
    response_model=ContractOut,
    summary="同意合同",
    description=(
        "企业同意待确认的合同：合同从此不可修改，平台生成双方将要签署的合同 PDF，合同变为待签署"
        "（事件 contracts.contract_agreed）。"
    ),
    response_description="同意后的合同（待签署）",
    responses=problems(
        errors.contract_not_found,
        errors.wrong_party(Action.AGREE),
        *ACTIVE,
        errors.contract_state(State.DRAFTING, Action.AGREE),
        errors.document_unavailable,
        UNPRINTABLE_TERMS,
    ),
)
async def agree(contract: ReadableContract, session: SessionDep, user: CurrentUser, ctx: Ctx) -> ContractOut:
    """同意: the contract cannot change any more."""
    updated = await service.agree(session, ctx, contract.id, user)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post(
    "/contracts/{contract_id}/return",
    response_model=ContractOut,
    summary="退回修改",
    description=(
        "企业发现合同不符合要求时退回给服务机构修改，须填写原因；合同变为退回修改，原因记入该版本"
        "（事件 contracts.contract_returned）。"
    ),
    response_description="退回后的合同",
    responses=problems(
        errors.contract_not_found,
        errors.wrong_party(Action.RETURN),
        *ACTIVE,
        errors.contract_state(State.AGREED, Action.RETURN),
    ),
)
async def return_contract(
    body: ContractReasonIn, contract: ReadableContract, session: SessionDep, user: CurrentUser
) -> ContractOut:
    """退回修改, with the reason."""
    updated = await service.return_(session, contract.id, user, body.reason)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post(
    "/contracts/{contract_id}/sign",
    response_model=ContractOut,
    summary="签署合同",
    description=(
        "合同一方（企业或服务机构）在通过针对本合同的人脸认证后，用本单位的电子签章签署待签署的合同"
        "（人脸认证结果只能使用一次）。须先制作签章；双方都签署后合同生效（事件 contracts.contract_signed），"
        "订单进入待支付或待服务。订单已取消或申请取消时不能签署。"
    ),
    response_description="签署后的合同",
    responses=problems(
        errors.contract_not_found,
        *ACTIVE,
        errors.contract_cancelled,
        errors.contract_state(State.PENDING_REVIEW, Action.SIGN),
        *VERIFICATION,
        errors.already_signed,
        errors.seal_required,
        errors.signing_unavailable,
    ),
)
async def sign(
    body: VerificationTokenIn,
    contract: ReadableContract,
    session: SessionDep,
    user: CurrentUser,
    ctx: Ctx,
    request: Request,
) -> ContractOut:
    """Sign the agreed contract after a passed 人脸认证 for this contract (the token is spent)."""
    updated = await service.sign(
        session, ctx, request.app.state.runtime.verifier, contract.id, user, body.verification_token
    )
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.get(
    "/contracts/{contract_id}/document",
    response_class=Response,
    summary="合同文件",
    description=(
        "合同双方或平台人员下载合同 PDF：企业同意后为最终合同（含已有的签名），此前为按当前条款生成的草稿。"
    ),
    response_description="合同 PDF",
    responses={
        200: {"content": {"application/pdf": {}}},
        **problems(errors.contract_not_found, errors.document_unavailable),
    },
)
async def contract_document(contract: ShownContract, session: ReadSessionDep, ctx: Ctx) -> Response:
    """The contract PDF: the agreed one (with every signature made so far) once agreed, else
    a draft of the current terms."""
    stored = await session.get(ContractDocument, contract.id)
    if stored is not None:
        pdf = stored.pdf
    else:
        try:
            pdf = document.render_contract(
                service.contract_text(contract, ctx.settings), font=ctx.settings.pdf_font_path, draft=True
            ).pdf
        except document.FontMissing as exc:
            raise errors.document_unavailable() from exc
    name = f"contract-{contract.order_no or contract.id}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


@admin_router.get(
    "",
    response_model=ContractPage,
    summary="合同管理（管理端）",
    description="平台人员查看全部合同，新的在前，可按合同状态筛选，并给出各状态的数量。",
    response_description="一页合同及各状态的数量",
)
async def admin_contracts(
    session: ReadSessionDep,
    _staff: StaffUser,
    paging: Paging,
    state: Annotated[StateName | None, Query(description="合同状态")] = None,
) -> ContractPage:
    query = select(Contract).order_by(col(Contract.created_at).desc(), col(Contract.id))
    if state is not None:
        query = query.where(col(Contract.state) == state)
    total, rows = await paginate(session, query, paging)
    counted = (await session.exec(select(Contract.state, func.count()).group_by(Contract.state))).all()
    counts = {s.value: 0 for s in State} | {str(k): int(v) for k, v in counted}
    items = [await service.contract_out(session, r, None) for r in rows]
    return ContractPage(items=items, total=total, counts=counts, **paging.echo())


@admin_router.post(
    "/{contract_id}/terminate",
    response_model=ContractOut,
    status_code=202,
    summary="终止合同",
    description=(
        "平台管理员申请终止已签署的合同，须填写原因：合同变为终止审核中（冻结），等待支付服务（其掌握已付出的款项）"
        "和订单服务答复（事件 contracts.termination_requested）；双方同意后合同已终止，任一方拒绝则恢复为已签署"
        "并给出 termination_refused_reason。服务券已兑付的合同直接拒绝。记入审计日志。"
    ),
    response_description="终止审核中的合同（终止申请已受理）",
    responses=problems(
        errors.contract_not_found,
        errors.settlement_paid,
        errors.contract_state(State.AGREED, Action.REQUEST_TERMINATION),
    ),
)
async def terminate(
    contract_id: str, body: ContractReasonIn, session: SessionDep, admin: AdminUser
) -> ContractOut:
    """Ask to terminate a signed contract: it is ``terminating`` (frozen) until payments, which
    owns money paid out, accepts (``terminated``) or refuses (``signed`` again, with
    ``termination_refused_reason``). Refused at once when the subsidy is known settled."""
    updated = await service.terminate(session, contract_id, admin, body.reason)
    await session.commit()
    return await service.contract_out(session, updated, admin)
