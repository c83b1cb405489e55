"""The manual's words the portal shows where the API gives a key: tabs, states, voucher
types, roles; and, for the problems a user can do something about, what to do next."""

from __future__ import annotations

from common.categories import CATEGORIES, VOUCHER_TYPES

__all__ = ["CATEGORIES", "VOUCHER_TYPES"]

# 我购买的服务 / 我的服务订单: the tabs in the manual's order (DESIGN.md "Order status").
ORDER_TABS: tuple[tuple[str, str], ...] = (
    ("", "全部订单"),
    ("awaiting_acceptance", "待接单"),
    ("awaiting_contract", "待签合同"),
    ("awaiting_payment", "待支付"),
    ("awaiting_service", "待服务"),
    ("in_service", "待完成"),
    ("completed", "已完成"),
    ("cancelled", "订单取消"),
    ("evaluated", "评价完成"),
)

ORDER_STEPS: tuple[str, ...] = ("申请服务", "服务机构接单", "签订合同", "线上支付", "完成服务", "评价服务")

VOUCHER_STATES = {
    "not_applied": "服务券配额申请",
    "pending_review": "待审核",
    "rejected": "审核不通过",
    "active": "去使用",
    "expired": "已过期",
}

CONTRACT_STATES = {
    "drafting": "起草中",
    "pending_review": "待企业确认",
    "returned": "退回修改",
    "agreed": "已同意，待签署",
    "signed": "已签署",
    "terminating": "终止中",
    "voided": "已作废",
    "terminated": "已终止",
}

REMITTANCE_STATES = {"pending": "待核实", "confirmed": "已到账", "rejected": "未到账"}
SETTLEMENT_STATES = {
    "open": "待申请兑付",
    "claimed": "待审核",
    "approved": "审核通过",
    "paid": "已兑付",
    "rejected": "审核不通过",
    "cancelled": "已取消",
}
REFUND_STATES = {"due": "待退款", "refunded": "已退款"}
PRODUCT_STATES = {
    "draft": "草稿",
    "pending_review": "待审核",
    "rejected": "审核不通过",
    "listed": "已上架",
    "unlisted": "已下架",
}
APPLICATION_STATES = {"pending_review": "待审核", "approved": "审核通过", "rejected": "审核不通过"}
DEMAND_STATES = {
    "pending": "待处理",
    "under_review": "待审核",
    "published": "已发布",
    "returned": "退回修改",
    "rejected": "审核不通过",
    "closed": "关闭需求",
}
ROLES = {
    "owner": "企业负责人",
    "agent": "经办人",
    "reviewer": "审核人员",
    "finance": "财务人员",
    "administrator": "平台管理员",
}
ID_TYPES = {
    "resident_id": "居民身份证",
    "hk_macao_tw_permit": "港澳台居民居住证",
    "foreign_permanent_residence": "外国人永久居留身份证",
}

# Problems a user can act on: what to do next, and where (shown instead of a bare error).
HINTS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "organization_suspended": (
        "贵单位已被平台暂停，暂不能办理新的业务；已办理的付款、兑付照常进行。如有疑问请留言联系平台。",
        ("/me/messages", "我要留言"),
    ),
    "provider_suspended": ("该服务机构已被平台暂停，暂不能办理新的业务。", None),
    "organization_not_certified": ("请先完成企业信息认证。", ("/me/certification", "企业信息认证")),
    "certification_required": ("请先完成企业信息认证。", ("/me/certification", "企业信息认证")),
    "bank_account_required": ("请先在「支付认证」中填写对公收款账户。", ("/me/bank-account", "支付认证")),
    "bank_account_not_set": ("请先在「支付认证」中填写对公收款账户。", ("/me/bank-account", "支付认证")),
    "provider_bank_account_missing": ("服务机构尚未填写收款账户，请联系服务机构。", None),
    "payee_account_missing": ("服务机构尚未填写收款账户，请联系服务机构。", None),
    "provider_not_approved": (
        "贵单位还不是平台的服务机构，请先申请入驻平台。",
        ("/me/provider-application", "申请入驻平台"),
    ),
    "no_usable_voucher": ("没有可用的服务券：请先申请服务券配额。", ("/me/vouchers", "服务券配额申请")),
    "seal_required": ("请先制作电子签章（需人脸认证）。", ("/me/seal", "制作签章")),
    "owner_required": ("此操作需由企业负责人办理。", None),
    "organization_syncing": ("平台正在同步贵单位的信息，请稍候几秒后重试。", None),
    "access_revoked": ("您的权限已变更，请重新登录。", ("/login", "重新登录")),
}
