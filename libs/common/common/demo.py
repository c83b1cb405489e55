"""The demo organisations ``make run`` seeds (development only), shared by every service's seed.

Identity creates the accounts and organisations with these fixed ids and publishes their
certification; quota issues the demo enterprise its general voucher and lists its
designation; catalog onboards the demo providers and lists their products. Fixed ids let
each service seed its own part at start without waiting for another's events.
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.cn import ric, uscc


def _uscc(body17: str) -> str:
    return body17 + uscc.calc_check_digit(body17)


def _resident_id(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")  # it reads 18 characters, ignoring the last


@dataclass(frozen=True)
class DemoOrg:
    id: str
    label: str
    phone: str
    name: str
    uscc: str
    kind: str  # enterprise | provider
    provider: bool
    legal_rep: str
    legal_rep_id: str
    bank: str


DEMO_PASSWORD = "Demo-2024"
ADMIN = ("平台管理员", "13800000000", "Admin-2024")

ENTERPRISE = DemoOrg(
    id="00000000-0000-4000-8000-00000000e001",
    label="企业（服务券使用方）",
    phone="13800000001",
    name="广西示范制造有限公司",
    uscc=_uscc("91450100MA5L0DEM0"),
    kind="enterprise",
    provider=False,
    legal_rep="张三",
    legal_rep_id=_resident_id("45010219800101123"),
    bank="中国工商银行",
)
PROVIDER = DemoOrg(
    id="00000000-0000-4000-8000-00000000p001".replace("p", "a"),
    label="服务机构",
    phone="13800000002",
    name="广西示范科技服务有限公司",
    uscc=_uscc("91450100MA5L0PRX1"),
    kind="provider",
    provider=True,
    legal_rep="李四",
    legal_rep_id=_resident_id("45030219850505234"),
    bank="中国建设银行",
)

ORGS: tuple[DemoOrg, ...] = (ENTERPRISE, PROVIDER)
