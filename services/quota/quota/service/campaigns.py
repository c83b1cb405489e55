"""Campaigns: the current one, and an administrator's create-or-change (which never touches
an issued voucher: vouchers copy their ratio and window when they are issued)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.categories import VOUCHER_TYPES
from common.db import lock
from quota import errors
from quota.models import Campaign, CampaignType


async def campaign_for(session: AsyncSession, today: date) -> Campaign | None:
    """The campaign of ``today``'s year, else the newest one."""
    found = await session.get(Campaign, today.year)
    if found is not None:
        return found
    return (await session.exec(select(Campaign).order_by(col(Campaign.year).desc()).limit(1))).first()


async def types_of(session: AsyncSession, year: int) -> dict[str, CampaignType]:
    rows = (await session.exec(select(CampaignType).where(col(CampaignType.year) == year))).all()
    order = list(VOUCHER_TYPES)
    return {
        r.voucher_type: r
        for r in sorted(rows, key=lambda r: order.index(r.voucher_type) if r.voucher_type in order else 99)
    }


def check_spec(spec: dict[str, Any]) -> None:
    seen: set[str] = set()
    for i, t in enumerate(spec["types"]):
        vt = t["voucher_type"]
        if vt not in VOUCHER_TYPES:
            raise errors.campaign_invalid(f"types.{i}.voucher_type", f"未知的服务券类型 {vt}")
        if vt in seen:
            raise errors.campaign_invalid(f"types.{i}.voucher_type", f"服务券类型 {vt} 重复")
        seen.add(vt)
        if t["valid_from"] > t["valid_to"]:
            raise errors.campaign_invalid(f"types.{i}.valid_to", "有效期结束日期不能早于开始日期")
        if vt != "general" and not t.get("basis_share_bp"):
            raise errors.campaign_invalid(f"types.{i}.basis_share_bp", "专项券须设置可申领的依据比例")
    if not spec["tiers"]:
        raise errors.campaign_invalid("tiers", "通用券须设置企业划型档次")
    names = [d for t in spec["tiers"] for d in t["designations"]]
    if len(names) != len(set(names)):
        raise errors.campaign_invalid("tiers", "同一企业类型不能出现在两个档次中")


async def put_campaign(session: AsyncSession, year: int, spec: dict[str, Any]) -> tuple[Campaign, bool]:
    """Create or replace the campaign ``year``; (campaign, created)."""
    check_spec(spec)
    existing = await lock(session, Campaign, year)
    created = existing is None
    campaign = existing or Campaign(year=year)
    campaign.title = spec.get("title") or f"{year}年广西制造业企业培优育强服务券活动"
    campaign.tiers = [
        {"label": t["label"], "amount_fen": int(t["amount_fen"]), "designations": list(t["designations"])}
        for t in spec["tiers"]
    ]
    campaign.pending_budget_fen = int(spec.get("pending_budget_fen") or 0)
    session.add(campaign)
    await session.flush()
    await session.execute(delete(CampaignType).where(col(CampaignType.year) == year))
    for t in spec["types"]:
        session.add(
            CampaignType(
                year=year,
                voucher_type=t["voucher_type"],
                policy_text=t["policy_text"],
                valid_from=t["valid_from"],
                valid_to=t["valid_to"],
                ratio_bp=int(t["ratio_bp"]),
                yearly_cap_fen=int(t.get("yearly_cap_fen") or 0),
                basis_share_bp=t.get("basis_share_bp"),
                support_years=t.get("support_years"),
            )
        )
    await session.flush()
    return campaign, created
