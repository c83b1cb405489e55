"""The seals' public routes: the organisation's seal (make it, see it), the platform's signing
CA certificate, and the check of anyone's signed PDF: deps -> service -> one commit -> Out.

Included before ``contracts``' router: ``GET /contracts/signing-ca`` and
``/contracts/ca-certificate`` would otherwise be taken for ``GET /contracts/{contract_id}``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser
from common.openapi import problems
from contracts import errors, verification
from contracts.api import ACTIVE, VERIFICATION
from contracts.config import Settings
from contracts.deps import Ctx
from contracts.models import Seal
from contracts.schemas.seals import ContractVerificationOut, SealOut, VerificationTokenIn
from contracts.service import seals as service

UNPRINTABLE_SEAL = errors.text_not_printable("电子签章", [("org_name", "单位名称", ["\u202e"])])

router = APIRouter(prefix="/api/v1", tags=["contracts"])


@router.get(
    "/contracts/signing-ca",
    response_class=Response,
    summary="平台电子签章 CA 证书",
    description=(
        "登录用户下载平台电子签章的 CA 证书（PEM），即验证已签署合同的信任根，可导入任何 PAdES 校验工具"
        "或用 voucher-contracts verify 离线校验。无需登录的版本见 GET /contracts/ca-certificate。"
    ),
    response_description="CA 证书（PEM）",
    responses={
        200: {"content": {"application/x-pem-file": {}}},
        **problems(errors.signing_unavailable),
    },
)
async def signing_ca(_user: CurrentUser, ctx: Ctx) -> Response:
    """The platform's signing CA certificate (PEM): the trust root to validate signed contracts
    offline (e.g. ``voucher-contracts verify contract.pdf --ca ca.pem``, or any PAdES validator)."""
    return Response(ctx.require_ca().cert_pem, media_type="application/x-pem-file")


@router.get(
    "/contracts/ca-certificate",
    response_class=Response,
    summary="平台电子签章 CA 证书（公开）",
    description=(
        "任何人（无需登录）下载平台电子签章的 CA 证书，即每份已签署合同的信任根：导入 PAdES 校验工具"
        "（如 Adobe Acrobat 的受信任证书）或用 voucher-contracts verify 校验合同。默认 PEM，format=der 时为 DER。"
    ),
    responses={
        200: {
            "content": {"application/x-pem-file": {}, "application/pkix-cert": {}},
            "description": "CA 证书：PEM，或 format=der 时为 DER",
        },
        **problems(errors.signing_unavailable),
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
    "/contracts/verify",
    response_model=ContractVerificationOut,
    summary="校验合同 PDF 的电子签名（公开）",
    description=(
        "任何人（无需登录）上传一份合同 PDF（multipart，字段 file），得知它是否由平台签署：每个签名的签署方、"
        "签署时间、是否完整可信、签署后文件是否被修改。文件既不保存也不查找。不是可读的已签名 PDF 为 422，"
        "超过大小上限为 413，同时校验的请求过多时为 503（稍后重试）。"
    ),
    response_description="校验结果：每个签名是否有效、完整，文件签署后是否被修改",
    responses=problems(
        errors.verify_file_too_large(Settings.model_fields["verify_max_bytes"].default),
        errors.verify_empty_file,
        errors.verify_not_pdf,
        errors.verify_pdf_unreadable,
        errors.verify_pdf_encrypted,
        errors.verify_pdf_unsigned,
        errors.verify_too_many_signatures(verification.MAX_SIGNATURES),
        errors.verify_busy,
        errors.signing_unavailable,
    ),
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


@router.post(
    "/me/seal",
    response_model=SealOut,
    status_code=201,
    summary="制作签章",
    description=(
        "单位的注册人（法定代表人）在通过用途为 seal 的人脸认证后，为本单位制作电子签章（每个单位一次）："
        "平台以认证的单位名称生成签章图片并签发签章证书，此后签署合同无需重复制作。"
    ),
    response_description="制作好的电子签章",
    responses=problems(
        errors.owner_only,
        *ACTIVE,
        *VERIFICATION,
        errors.seal_exists,
        errors.organization_unknown,
        errors.document_unavailable,
        UNPRINTABLE_SEAL,
    ),
)
async def make_seal(
    body: VerificationTokenIn, session: SessionDep, user: CurrentUser, ctx: Ctx, request: Request
) -> SealOut:
    """制作签章: once per organisation, by its owner, after a passed ``seal`` 人脸认证."""
    seal = await service.make_seal(
        session, ctx, request.app.state.runtime.verifier, user, body.verification_token
    )
    await session.commit()
    return SealOut.model_validate(seal)


@router.get(
    "/me/seal",
    response_class=Response,
    summary="我的签章",
    description="本单位成员查看本单位的电子签章图片（PNG）。",
    response_description="签章图片（PNG）",
    responses={200: {"content": {"image/png": {}}}, **problems(errors.seal_not_found)},
)
async def my_seal(session: ReadSessionDep, user: CurrentUser) -> Response:
    """The organisation's seal image (PNG)."""
    seal = await session.get(Seal, user.org_id) if user.org_id else None
    if seal is None:
        raise errors.seal_not_found()
    return Response(seal.image_png, media_type="image/png")
