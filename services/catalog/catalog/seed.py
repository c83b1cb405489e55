"""Demo data (``make run``, development only): the demo provider of ``common.demo`` approved,
with listed products in every one of the nine categories, among them the manual's
专利分级评价 (市场指导价 80元, 平台销售价 76元, 数字化转型, 最高补贴 138元: 券后价 38元 with
the 50% general voucher). Publishes ``catalog.provider_approved`` for it (identity then adds
the provider capability). Idempotent: a provider already there is left as it is.
"""

from __future__ import annotations

import uuid

import structlog

from catalog.domain.products import Status
from catalog.models import Product, Provider
from common import bus, demo
from common.app import ServiceRuntime
from common.events import ProviderApproved
from common.timers import utcnow

log = structlog.get_logger(__name__)

_NS = uuid.UUID("6f1d3c5e-8a47-4f0e-9b1c-2d7e4a9c0b11")

# (name, category, market 元, platform 元, max subsidy 元, description)
DEMO_PRODUCTS: tuple[tuple[str, str, int, int, int, str], ...] = (
    ("专利分级评价", "数字化转型", 80, 76, 138, "对企业专利进行分级评价，出具专利价值评价报告"),
    ("企业管理诊断咨询", "企业诊断", 60_000, 50_000, 25_000, "对企业战略、组织、生产与财务开展全面诊断"),
    ("工业软件上云实施", "数字化转型", 300_000, 300_000, 150_000, "ERP/MES 系统上云部署与数据迁移"),
    ("新产品研发技术攻关", "技术创新", 200_000, 180_000, 90_000, "联合高校院所开展关键技术攻关"),
    ("供应链融资方案设计", "融资服务", 50_000, 45_000, 22_500, "应收账款与存货融资方案设计与对接"),
    ("产品第三方检验检测", "高阶检验检测验证", 30_000, 28_000, 14_000, "依据国家标准开展产品性能与安全检测"),
    ("海外市场开拓服务", "中高端市场开拓", 120_000, 100_000, 50_000, "展会对接、渠道建设与品牌推广"),
    ("数控机床直接租赁", "直接设备租赁", 500_000, 480_000, 100_000, "五轴数控机床直接租赁，含安装调试"),
    ("中小企业贷款融资担保", "融资担保", 100_000, 100_000, 50_000, "为企业银行贷款提供融资担保服务"),
    ("安全生产标准化咨询", "其他服务", 40_000, 36_000, 18_000, "安全生产标准化体系建设与评审辅导"),
)


def product_id(org_id: str, name: str) -> str:
    return str(uuid.uuid5(_NS, f"{org_id}/{name}"))


async def seed_demo(runtime: ServiceRuntime) -> None:
    org = demo.PROVIDER
    async with runtime.db.transaction() as session:
        if await session.get(Provider, org.id) is not None:
            return
        session.add(
            Provider(
                org_id=org.id,
                name=org.name,
                profile=f"{org.name}是经平台审核入驻的服务机构，提供数字化转型、企业诊断、检验检测等服务。",
                categories=sorted({c for _n, c, *_ in DEMO_PRODUCTS}),
                contact_name=org.legal_rep,
                contact_phone=org.phone,
                address="广西壮族自治区南宁市青秀区民族大道 100 号",
                working_hours="周一至周五 08:00:00-18:00:00",
            )
        )
        now = utcnow()
        for name, category, market, price, max_subsidy, description in DEMO_PRODUCTS:
            figures = {
                "market_price_fen": market * 100,
                "platform_price_fen": price * 100,
                "max_subsidy_fen": max_subsidy * 100,
            }
            session.add(
                Product(
                    id=product_id(org.id, name),
                    provider_id=org.id,
                    name=name,
                    category=category,
                    description=description,
                    deliverables="服务报告一份及相关成果材料",
                    acceptance_criteria="双方确认服务报告并签署验收单",
                    market_price_fen=figures["market_price_fen"],
                    platform_price_fen=figures["platform_price_fen"],
                    max_subsidy_fen=figures["max_subsidy_fen"],
                    status=Status.LISTED,
                    approved_snapshot=figures,
                    submitted_at=now,
                    listed_at=now,
                )
            )
        await session.flush()
        await bus.emit(session, ProviderApproved(org_id=org.id, name=org.name), aggregate_id=org.id)
    log.info("catalog_demo_seeded", provider=org.id, products=len(DEMO_PRODUCTS))
