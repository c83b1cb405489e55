"""Demo data (``make run``, development only): the four documents linked from the manual's
home page, with honest placeholder text (the real documents are published by the platform's
administrators), and one published demand of the demo enterprise for the 企业需求 board
(the manual's 【技术创新】植物提取厂房设计, 预算金额 50000元). Idempotent: fixed ids.
"""

from __future__ import annotations

import uuid

import structlog

from common import demo
from common.app import ServiceRuntime
from common.numbers import DEMAND_PREFIX, next_number
from common.timers import utcnow
from demands.domain.demands import Status
from demands.models import Demand, Notice

log = structlog.get_logger(__name__)

_NS = uuid.UUID("3c0e9d0a-7b1f-4f4e-8a2d-5d8f0c6b9e21")

_PLACEHOLDER = (
    "<p>本页为演示环境的占位内容。正式文件由平台管理员在“公告管理”中发布，发布后在此显示全文或 PDF 附件。</p>"
)

DEMO_NOTICES: tuple[tuple[str, str, str], ...] = (
    ("服务券管理办法", "policy", "<h2>广西制造业企业培优育强服务券管理办法</h2>"),
    (
        "企业操作指南",
        "guide",
        "<h2>企业操作指南</h2><p>注册、企业信息认证、申领服务券、购买服务、签订合同、支付与评价。</p>",
    ),
    (
        "服务商进驻操作指南",
        "guide",
        "<h2>服务商进驻操作指南</h2><p>申请入驻、发布服务产品、接单、签订合同、服务券兑付。</p>",
    ),
    ("2024年“揭榜”通知", "notice", "<h2>2024年“揭榜”通知</h2>"),
)


def notice_id(title: str) -> str:
    return str(uuid.uuid5(_NS, f"notice/{title}"))


DEMO_DEMAND_ID = str(uuid.uuid5(_NS, "demand/植物提取厂房设计"))


async def seed_demo(runtime: ServiceRuntime) -> None:
    async with runtime.db.transaction() as session:
        if await session.get(Demand, DEMO_DEMAND_ID) is not None:
            return
        now = utcnow()
        for title, kind, heading in DEMO_NOTICES:
            session.add(
                Notice(
                    id=notice_id(title),
                    title=title,
                    kind=kind,
                    body_html=heading + _PLACEHOLDER,
                    created_by="system",
                    published_at=now,
                    updated_at=now,
                )
            )
        org = demo.ENTERPRISE
        session.add(
            Demand(
                id=DEMO_DEMAND_ID,
                demand_no=await next_number(session, DEMAND_PREFIX),
                org_id=org.id,
                org_name=org.name,
                contact_phone=org.phone,
                created_by="system",
                name="植物提取厂房设计",
                category="技术创新",
                budget_mode="fixed",
                budget_fen=5_000_000,
                content="新建植物提取生产线厂房，需要服务机构提供工艺布局与厂房设计方案，含环保与安全评估。",
                status=Status.PUBLISHED,
                applied_at=now,
                published_at=now,
                reviewed_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    log.info("demands_demo_seeded", notices=len(DEMO_NOTICES))
