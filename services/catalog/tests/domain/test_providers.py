"""catalog.domain.providers, pure: who may apply to be a provider, and in which categories."""

from __future__ import annotations

import pytest

from catalog.domain import providers


@pytest.mark.parametrize(
    ("latest", "is_provider", "refusal"),
    [
        (None, False, None),
        ("rejected", False, None),
        ("pending_review", False, "application_pending"),
        ("approved", False, "already_provider"),
        (None, True, "already_provider"),
    ],
)
def test_an_organisation_applies_again_only_after_a_rejection(
    latest: str | None, is_provider: bool, refusal: str | None
) -> None:
    assert providers.may_apply(latest, is_provider=is_provider) == refusal


def test_unknown_categories_are_named() -> None:
    assert providers.unknown_categories(["数字化转型", "美容美发"]) == ["美容美发"]
