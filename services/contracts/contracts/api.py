"""contracts's public routes: deps -> service -> one commit -> Out."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import col, select

from common.app import SessionDep
from common.auth import AdminUser, CurrentUser, StaffUser
from common.pagination import Paging, paginate
from contracts import document, errors, service, verification
from contracts.deps import Ctx, OrderContract, ReadableContract
from contracts.domain import State
from contracts.models import Contract, ContractDocument, ContractVersion, Seal
from contracts.schemas import (
    ContractIn,
    ContractOut,
    ContractPage,
    ContractReasonIn,
    ContractVerificationOut,
    ContractVersionOut,
    ContractVersionsOut,
    SealOut,
    VerificationTokenIn,
)

# The states as a literal (an enum would become a schema named "State" in the merged OpenAPI).
StateName = Literal[
    "drafting", "pending_review", "returned", "agreed", "signed", "terminating", "voided", "terminated"
]
assert set(get_args(StateName)) == {s.value for s in State}

router = APIRouter(prefix="/api/v1", tags=["contracts"])
admin_router = APIRouter(prefix="/api/v1/admin/contracts", tags=["contracts-admin"])


@router.get("/orders/{order_id}/contract", response_model=ContractOut)
async def order_contract(contract: OrderContract, session: SessionDep, user: CurrentUser) -> ContractOut:
    """The order's contract (either party, or staff)."""
    return await service.contract_out(session, contract, user)


@router.get("/contracts/signing-ca", response_class=Response)
async def signing_ca(_user: CurrentUser, ctx: Ctx) -> Response:
    """The platform's signing CA certificate (PEM): the trust root to validate signed contracts
    offline (e.g. ``voucher-contracts verify contract.pdf --ca ca.pem``, or any PAdES validator)."""
    return Response(ctx.require_ca().cert_pem, media_type="application/x-pem-file")


@router.get(
    "/contracts/ca-certificate",
    response_class=Response,
    summary="平台电子签章 CA 证书（公开）",
    responses={
        200: {
            "content": {"application/x-pem-file": {}, "application/pkix-cert": {}},
            "description": "CA 证书：PEM，或 format=der 时为 DER",
        }
    },
)
async def ca_certificate(
    ctx: Ctx,
    format: Annotated[Literal["pem", "der"], Query(description="证书格式：pem（默认）或 der")] = "pem",
) -> Response:
    """The trust root of every signed contract, for anyone (no login): import it into a PAdES
    validator (e.g. Adobe Acrobat's trusted certificates) or ``voucher-contracts verify``."""
    ca = ctx.require_ca()
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if format == "der":
        return Response(
            verification.der(ca.cert_pem),
            media_type="application/pkix-cert",
            headers={**headers, "Content-Disposition": 'attachment; filename="voucher-signing-ca.cer"'},
        )
    return Response(
        ca.cert_pem,
        media_type="application/x-pem-file",
        headers={**headers, "Content-Disposition": 'attachment; filename="voucher-signing-ca.pem"'},
    )


@router.post(
    "/contracts/verify", response_model=ContractVerificationOut, summary="校验合同 PDF 的电子签名（公开）"
)
async def verify(
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="要校验的合同 PDF（不超过 10 MB）")],
) -> ContractVerificationOut:
    """Anyone (no login) uploads a contract PDF and learns whether the platform's CA signed it:
    per signature who signed, when, whether it is intact and trusted, and whether anything
    changed after it. The file is neither stored nor looked up; 422 for a file that is not a
    readable, signed PDF, 413 over ``CONTRACTS_VERIFY_MAX_BYTES``."""
    limit = ctx.settings.verify_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise errors.verify_file_too_large(limit)
    report = await service.verify_document(ctx, data)
    return ContractVerificationOut.model_validate(report)


@router.get("/contracts/{contract_id}", response_model=ContractOut)
async def get_contract(contract: ReadableContract, session: SessionDep, user: CurrentUser) -> ContractOut:
    return await service.contract_out(session, contract, user)


@router.get("/contracts/{contract_id}/versions", response_model=ContractVersionsOut)
async def versions(contract: ReadableContract, session: SessionDep, paging: Paging) -> ContractVersionsOut:
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


@router.put("/contracts/{contract_id}", response_model=ContractOut)
async def edit(
    body: ContractIn, contract: ReadableContract, session: SessionDep, user: CurrentUser, ctx: Ctx
) -> ContractOut:
    """The provider sets total, deposit and terms while drafting or returned; terms the
    contract's font cannot show are refused (422 ``text_not_printable``)."""
    updated = await service.edit(session, ctx, contract.id, user, body)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post("/contracts/{contract_id}/submit", response_model=ContractOut)
async def submit(contract: ReadableContract, session: SessionDep, user: CurrentUser) -> ContractOut:
    updated = await service.submit(session, contract.id, user)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post("/contracts/{contract_id}/agree", response_model=ContractOut)
async def agree(contract: ReadableContract, session: SessionDep, user: CurrentUser, ctx: Ctx) -> ContractOut:
    """同意: the contract cannot change any more."""
    updated = await service.agree(session, ctx, contract.id, user)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post("/contracts/{contract_id}/return", response_model=ContractOut)
async def return_contract(
    body: ContractReasonIn, contract: ReadableContract, session: SessionDep, user: CurrentUser
) -> ContractOut:
    """退回修改, with the reason."""
    updated = await service.return_(session, contract.id, user, body.reason)
    await session.commit()
    return await service.contract_out(session, updated, user)


@router.post("/contracts/{contract_id}/sign", response_model=ContractOut)
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


@router.get("/contracts/{contract_id}/document", response_class=Response)
async def contract_document(contract: ReadableContract, session: SessionDep, ctx: Ctx) -> Response:
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


@router.post("/me/seal", response_model=SealOut, status_code=201)
async def make_seal(
    body: VerificationTokenIn, session: SessionDep, user: CurrentUser, ctx: Ctx, request: Request
) -> SealOut:
    """制作签章: once per organisation, by its owner, after a passed ``seal`` 人脸认证."""
    seal = await service.make_seal(
        session, ctx, request.app.state.runtime.verifier, user, body.verification_token
    )
    await session.commit()
    return SealOut.model_validate(seal)


@router.get("/me/seal", response_class=Response)
async def my_seal(session: SessionDep, user: CurrentUser) -> Response:
    """The organisation's seal image (PNG)."""
    seal = await session.get(Seal, user.org_id) if user.org_id else None
    if seal is None:
        raise errors.seal_not_found()
    return Response(seal.image_png, media_type="image/png")


@admin_router.get("", response_model=ContractPage)
async def admin_contracts(
    session: SessionDep,
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


@admin_router.post("/{contract_id}/terminate", response_model=ContractOut, status_code=202)
async def terminate(
    contract_id: str, body: ContractReasonIn, session: SessionDep, admin: AdminUser
) -> ContractOut:
    """Ask to terminate a signed contract: it is ``terminating`` (frozen) until payments, which
    owns money paid out, accepts (``terminated``) or refuses (``signed`` again, with
    ``termination_refused_reason``). Refused at once when the subsidy is known settled."""
    updated = await service.terminate(session, contract_id, admin, body.reason)
    await session.commit()
    return await service.contract_out(session, updated, admin)
