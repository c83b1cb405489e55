"""A demand's life (manual chapter 9) and the rules of 我要对接.

    submit ──> pending (待处理) ──reviewer opens──> under_review (待审核)
                  │  ^                                   │
                  │  └──── edit ──── returned (退回修改) <─┤ return (with a reason)
                  │                                      ├──> rejected (审核不通过, with a reason)
                  └──────────── approve ─────────────────┴──> published (已发布)
    any state but closed ──enterprise closes──> closed (关闭需求)

Only a pending or returned demand is edited (a returned one goes back to review); a published
demand is changed by closing it and publishing a new one, so what providers answered is
what they read. Reviewers decide a pending or under-review demand.
"""

from __future__ import annotations

from enum import StrEnum

from common.categories import CATEGORIES
from common.masking import mask_phone
from common.money import format_yuan
from common.rules import Refusal

CONTENT_MAX = 300
NAME_MAX = 100


class Status(StrEnum):
    PENDING = "pending"
    UNDER_REVIEW = "under_review"
    PUBLISHED = "published"
    RETURNED = "returned"
    REJECTED = "rejected"
    CLOSED = "closed"


# The manual's tabs, in its order: 全部 待处理 已发布 待审核 退回修改 审核不通过 关闭需求.
LABELS: dict[str, str] = {
    Status.PENDING: "待处理",
    Status.PUBLISHED: "已发布",
    Status.UNDER_REVIEW: "待审核",
    Status.RETURNED: "退回修改",
    Status.REJECTED: "审核不通过",
    Status.CLOSED: "关闭需求",
}
TABS: tuple[str, ...] = ("all", *LABELS)

BUDGET_QUOTE = "quote"  # 需要服务商报价
BUDGET_FIXED = "fixed"  # 我有明确预算

# The board shows the chosen category's description (manual 9, 企业需求). The manual prints
# 企业诊断's; the others say what the category's products cover (common.categories).
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "企业诊断": "数字化转型、研发设计、知识产权、绿色节能、融资、股权、安全生产、数据安全评估、技术改造等诊断服务，"
    "面向企业高管深修、标杆研学等服务。",
    "数字化转型": "工业软件、设备上云、数字化车间和智能工厂建设、工业互联网平台应用等数字化改造服务。",
    "技术创新": "新产品研发、关键技术攻关、工艺改进、知识产权布局与成果转化等技术创新服务。",
    "融资服务": "银行贷款、供应链金融、股权融资、上市辅导等融资方案设计与对接服务。",
    "高阶检验检测验证": "产品性能、可靠性、安全与认证检验检测，以及中试验证等服务。",
    "中高端市场开拓": "展会对接、品牌推广、渠道建设、跨境电商与海外市场开拓等服务。",
    "直接设备租赁": "生产设备、检测设备等直接租赁服务（设备更新专项券）。",
    "融资担保": "为企业银行贷款等融资提供担保服务（设备更新专项券）。",
    "其他服务": "安全生产、节能环保、人才培训等其他提升企业能力的服务。",
}


def check_fields(*, category: str, budget_mode: str, budget_fen: int | None, content: str) -> None:
    """What the form asks (the schema has checked types and lengths in bytes it cannot see)."""
    if category not in CATEGORIES:
        raise Refusal("unknown_category", category=category)
    if budget_mode == BUDGET_FIXED and (budget_fen is None or budget_fen <= 0):
        raise Refusal("budget_amount_required")
    if budget_mode == BUDGET_QUOTE and budget_fen is not None:
        raise Refusal("budget_amount_not_expected")
    if len(content) > CONTENT_MAX:  # characters, as the form's 0/300 counter counts them
        raise Refusal("content_too_long", length=len(content))


def can_edit(status: str) -> bool:
    return status in (Status.PENDING, Status.RETURNED)


def after_edit(status: str) -> Status:
    """A returned demand goes back to review; a pending one stays pending."""
    if not can_edit(status):
        raise Refusal("demand_not_editable", status=status)
    return Status.PENDING


def after_close(status: str) -> Status:
    if status == Status.CLOSED:
        raise Refusal("demand_closed")
    return Status.CLOSED


def after_open_by_reviewer(status: str) -> Status:
    """A reviewer opening a pending demand makes it 待审核; anything else stays as it is."""
    return Status.UNDER_REVIEW if status == Status.PENDING else Status(status)


DECISIONS: dict[str, Status] = {
    "approve": Status.PUBLISHED,
    "return": Status.RETURNED,
    "reject": Status.REJECTED,
}


def after_decision(status: str, decision: str, reason: str | None) -> Status:
    if status not in (Status.PENDING, Status.UNDER_REVIEW):
        raise Refusal("demand_not_reviewable", status=status)
    if decision in ("return", "reject") and not (reason and reason.strip()):
        raise Refusal("reason_required")
    return DECISIONS[decision]


def check_response(*, status: str, demand_org_id: str, responder_org_id: str | None) -> None:
    """我要对接: only on a published demand, never one's own (once per provider: a unique index)."""
    if status == Status.CLOSED:
        raise Refusal("demand_closed")
    if status != Status.PUBLISHED:
        raise Refusal("demand_not_found")
    if responder_org_id == demand_org_id:
        raise Refusal("own_demand")


def budget_label(budget_mode: str, budget_fen: int | None) -> str:
    if budget_mode == BUDGET_FIXED and budget_fen:
        return f"{format_yuan(budget_fen)}元"
    return "需要服务商报价"


def response_label(count: int) -> str:
    """The board's line (目前已有3家服务机构申请对接)."""
    return f"目前已有{count}家服务机构申请对接"


def masked_phone(phone: str) -> str:
    return mask_phone(phone)
