"""catalog.domain.products, pure: the state machine, the pre-review flags, what an edit does."""

from __future__ import annotations

import pytest

from catalog.config import DEFAULT_BANNED_PHRASES
from catalog.domain import products as rules
from catalog.domain.products import Action, Figures, Status
from common.rules import Refusal

S = Status


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        (S.DRAFT, Action.SUBMIT, S.PENDING_REVIEW),
        (S.REJECTED, Action.SUBMIT, S.PENDING_REVIEW),
        (S.PENDING_REVIEW, Action.APPROVE, S.LISTED),
        (S.PENDING_REVIEW, Action.REJECT, S.REJECTED),
        (S.LISTED, Action.UNLIST, S.UNLISTED),
        (S.UNLISTED, Action.RELIST, S.LISTED),
    ],
)
def test_allowed_transitions_lead_where_the_manual_says(
    status: Status, action: Action, target: Status
) -> None:
    assert rules.transition(status, action) is target


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.DRAFT, Action.APPROVE),
        (S.DRAFT, Action.UNLIST),
        (S.PENDING_REVIEW, Action.SUBMIT),
        (S.LISTED, Action.SUBMIT),
        (S.LISTED, Action.APPROVE),
        (S.LISTED, Action.RELIST),
        (S.UNLISTED, Action.UNLIST),
        (S.REJECTED, Action.APPROVE),
        (S.REJECTED, Action.RELIST),
    ],
)
def test_every_other_transition_is_refused(status: Status, action: Action) -> None:
    with pytest.raises(Refusal) as refused:
        rules.transition(status, action)
    assert refused.value == Refusal("product_status_conflict", status=status, action=action)


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (S.DRAFT, ["edit", "submit"]),
        (S.PENDING_REVIEW, ["edit"]),
        (S.REJECTED, ["edit", "submit"]),
        (S.LISTED, ["edit", "unlist"]),
        (S.UNLISTED, ["edit", "relist"]),
    ],
)
def test_the_provider_sees_the_actions_its_product_allows(status: Status, actions: list[str]) -> None:
    assert rules.actions(status) == actions


@pytest.mark.parametrize(
    ("market", "price", "max_subsidy", "problem"),
    [
        (8000, 7600, 13800, None),
        (8000, 8000, 0, None),
        (8000, 8001, 100, "price_above_market"),
        (8000, 0, 100, "price_not_positive"),
        (0, 0, 100, "price_not_positive"),
        (8000, 7600, -1, "max_subsidy_negative"),
    ],
)
def test_prices_are_positive_and_the_platform_price_never_above_the_market_price(
    market: int, price: int, max_subsidy: int, problem: str | None
) -> None:
    if problem is None:
        rules.check_price(Figures(market, price, max_subsidy))
        return
    with pytest.raises(Refusal) as refused:
        rules.check_price(Figures(market, price, max_subsidy))
    assert refused.value == Refusal(problem)


def flags(**texts: str) -> list[str]:
    values = {
        "name": "专利分级评价",
        "description": "",
        "deliverables": "报告",
        "acceptance_criteria": "验收单",
    }
    values.update(texts)
    return [
        f"{f.code}:{f.message}" for f in rules.pre_review(banned_phrases=DEFAULT_BANNED_PHRASES, **values)
    ]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ({}, []),
        ({"deliverables": "  "}, ["missing_deliverables:未填写服务交付物"]),
        ({"acceptance_criteria": ""}, ["missing_acceptance_criteria:未填写验收标准"]),
        ({"description": "高新技术企业认定包过"}, ["banned_phrase:含有禁用表述：包过"]),
        ({"name": "工商代办", "description": "代办执照"}, ["banned_phrase:含有禁用表述：代办"]),
        ({"description": "含海外考察旅游"}, ["banned_phrase:含有禁用表述：旅游"]),
        (
            {"deliverables": "", "acceptance_criteria": "", "description": "包过，100%通过"},
            [
                "missing_deliverables:未填写服务交付物",
                "missing_acceptance_criteria:未填写验收标准",
                "banned_phrase:含有禁用表述：包过",
                "banned_phrase:含有禁用表述：100%通过",
            ],
        ),
    ],
)
def test_the_pre_review_flags_missing_deliverables_criteria_and_banned_phrasing(
    texts: dict[str, str], expected: list[str]
) -> None:
    assert flags(**texts) == expected


def test_the_banned_phrases_come_from_settings() -> None:
    found = rules.pre_review(
        name="x", description="含团建", deliverables="d", acceptance_criteria="a", banned_phrases=["团建"]
    )
    assert [f.code for f in found] == ["banned_phrase"]


@pytest.mark.parametrize(
    ("status", "figures_changed", "new_flags", "after"),
    [
        (S.LISTED, True, False, S.PENDING_REVIEW),
        (S.LISTED, False, True, S.PENDING_REVIEW),
        (S.LISTED, False, False, S.LISTED),
        (S.DRAFT, True, True, S.DRAFT),
        (S.UNLISTED, True, False, S.UNLISTED),
        (S.REJECTED, True, False, S.REJECTED),
        (S.PENDING_REVIEW, True, True, S.PENDING_REVIEW),
    ],
)
def test_a_listed_product_whose_price_or_max_subsidy_changes_goes_back_to_review(
    status: Status, figures_changed: bool, new_flags: bool, after: Status
) -> None:
    assert rules.status_after_edit(status, figures_changed=figures_changed, new_flags=new_flags) is after


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (Figures(8000, 7600, 13800), Figures(8000, 7600, 13800), False),
        (Figures(8000, 7600, 13800), Figures(9000, 7600, 13800), False),  # the guide price alone
        (Figures(8000, 7600, 13800), Figures(8000, 7000, 13800), True),
        (Figures(8000, 7600, 13800), Figures(8000, 7600, 10000), True),
    ],
)
def test_only_the_platform_price_and_max_subsidy_count_as_reviewed_figures(
    before: Figures, after: Figures, changed: bool
) -> None:
    assert rules.figures_changed(before, after) is changed


@pytest.mark.parametrize(
    ("approved", "current", "target"),
    [
        (Figures(8000, 7600, 13800), Figures(8000, 7600, 13800), S.LISTED),
        (Figures(8000, 7600, 13800), Figures(8000, 7000, 13800), S.PENDING_REVIEW),
        (None, Figures(8000, 7600, 13800), S.PENDING_REVIEW),
    ],
)
def test_a_relisted_product_needs_review_only_when_changed_since_approval(
    approved: Figures | None, current: Figures, target: Status
) -> None:
    assert rules.relist_target(approved, current) is target
