"""The pure rules of demands: demands.domain.demands."""

from __future__ import annotations

import pytest
from demands.domain import demands as d

from .samples import refused


def test_content_counts_characters_not_bytes() -> None:
    d.check_fields(category="技术创新", budget_mode="quote", budget_fen=None, content="需" * 300)  # 900 bytes
    refused(
        "content_too_long",
        d.check_fields,
        category="技术创新",
        budget_mode="quote",
        budget_fen=None,
        content="需" * 301,
    )


@pytest.mark.parametrize(
    ("category", "mode", "fen", "code"),
    [
        ("装修服务", "quote", None, "unknown_category"),
        ("技术创新", "fixed", None, "budget_amount_required"),
        ("技术创新", "fixed", 0, "budget_amount_required"),
        ("技术创新", "quote", 100, "budget_amount_not_expected"),
    ],
)
def test_the_form_refuses(category: str, mode: str, fen: int | None, code: str) -> None:
    refused(code, d.check_fields, category=category, budget_mode=mode, budget_fen=fen, content="x")


def test_the_life_of_a_demand() -> None:
    assert d.after_open_by_reviewer("pending") == d.Status.UNDER_REVIEW
    assert d.after_open_by_reviewer("published") == d.Status.PUBLISHED
    assert d.after_decision("under_review", "return", "请补充预算") == d.Status.RETURNED
    assert d.after_edit("returned") == d.Status.PENDING
    assert d.after_edit("pending") == d.Status.PENDING
    assert d.after_decision("pending", "approve", None) == d.Status.PUBLISHED
    assert d.after_close("published") == d.Status.CLOSED
    refused("demand_not_editable", d.after_edit, "published")
    refused("demand_not_editable", d.after_edit, "under_review")
    refused("demand_closed", d.after_close, "closed")
    refused("demand_not_reviewable", d.after_decision, "published", "approve", None)
    refused("reason_required", d.after_decision, "pending", "reject", "  ")


def test_responses() -> None:
    d.check_response(status="published", demand_org_id="a", responder_org_id="b")
    refused("own_demand", d.check_response, status="published", demand_org_id="a", responder_org_id="a")
    refused("demand_closed", d.check_response, status="closed", demand_org_id="a", responder_org_id="b")
    refused("demand_not_found", d.check_response, status="pending", demand_org_id="a", responder_org_id="b")


def test_labels_as_the_manual_shows_them() -> None:
    assert list(d.LABELS.values()) == ["待处理", "已发布", "待审核", "退回修改", "审核不通过", "关闭需求"]
    assert d.budget_label("fixed", 5_000_000) == "50,000元"
    assert d.budget_label("quote", None) == "需要服务商报价"
    assert d.response_label(3) == "目前已有3家服务机构申请对接"
    assert d.masked_phone("13812346433") == "138****6433"
    assert d.CATEGORY_DESCRIPTIONS["企业诊断"].startswith("数字化转型、研发设计、知识产权")
    assert set(d.CATEGORY_DESCRIPTIONS) == set(__import__("common.categories").categories.CATEGORIES)
