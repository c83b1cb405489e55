"""Campaigns: the public policy page (服务券配额申请) and the administrators' changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from common.app import ReadSessionDep, SessionDep
from common.audit import audit
from common.auth import AdminUser
from common.categories import VOUCHER_TYPES, categories_for
from common.numbers import format_date_cn
from common.openapi import problems
from quota import errors
from quota.config import Settings
from quota.deps import ReadCampaign, SettingsDep
from quota.models import Campaign, CampaignType
from quota.schemas.campaigns import CampaignIn, CampaignOut, CampaignTypeOut, VoucherTypesOut
from quota.service.campaigns import put_campaign, types_of

router = APIRouter(prefix="/api/v1", tags=["campaigns"])


def type_out(t: CampaignType) -> CampaignTypeOut:
    out = CampaignTypeOut.model_validate(t)
    return out.model_copy(
        update={
            "voucher_type_label": VOUCHER_TYPES.get(t.voucher_type, t.voucher_type),
            "valid_label": f"{format_date_cn(t.valid_from)}~{format_date_cn(t.valid_to)}",
            "categories": list(categories_for(t.voucher_type)),
        }
    )


async def campaign_out(session: SessionDep, campaign: Campaign, settings: Settings) -> CampaignOut:
    kinds = await types_of(session, campaign.year)
    return CampaignOut.model_validate(
        {
            "year": campaign.year,
            "title": campaign.title,
            "pending_budget_fen": campaign.pending_budget_fen,
            "tiers": campaign.tiers,
            "voucher_types": [type_out(t) for t in kinds.values()],
            "provider_yearly_cap_fen": settings.default_provider_cap_fen,
        }
    )


@router.get(
    "/campaigns/current",
    response_model=CampaignOut,
    summary="当前年度服务券活动",
    description=(
        "本年度服务券活动：各类服务券（通用券、融资担保券、设备租赁券）的有效期、适用服务类别、"
        "年度申领上限与政策说明，通用券的企业划型档次，以及服务机构年度补贴上限"
        "（provider_yearly_cap_fen）。无需登录。"
    ),
    response_description="当前年度活动",
    responses=problems(errors.no_campaign),
)
async def current(session: ReadSessionDep, campaign: ReadCampaign, settings: SettingsDep) -> CampaignOut:
    return await campaign_out(session, campaign, settings)


@router.get(
    "/voucher-types",
    response_model=VoucherTypesOut,
    summary="服务券类型（配额申请页）",
    description="配额申请页可选的服务券类型：本年度活动开放的每种类型及其有效期、适用服务类别。无需登录。",
    response_description="本年度开放的服务券类型",
    responses=problems(errors.no_campaign),
)
async def voucher_types(session: ReadSessionDep, campaign: ReadCampaign) -> VoucherTypesOut:
    kinds = await types_of(session, campaign.year)
    return VoucherTypesOut(year=campaign.year, items=[type_out(t) for t in kinds.values()])


@router.put(
    "/admin/campaigns/{year}",
    response_model=CampaignOut,
    summary="创建或修改年度活动",
    description=(
        "管理员创建（201）或修改（200）某年度的服务券活动：开放的券种及其有效期、比例与年度上限，"
        "通用券的企业划型档次。记入操作日志。"
    ),
    response_description="修改后的年度活动（新建时为 201）",
    responses=problems(errors.campaign_invalid("tiers", "通用券须设置企业划型档次")),
)
async def put(
    year: Annotated[int, Path(ge=2020, le=2100, description="活动年度")],
    body: CampaignIn,
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
) -> JSONResponse:
    spec = body.model_dump()
    campaign, created = await put_campaign(session, year, spec)
    audit(
        session, admin, "campaign.create" if created else "campaign.change", "campaign", str(year), year=year
    )
    out = await campaign_out(session, campaign, settings)
    await session.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)
