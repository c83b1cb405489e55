"""catalog beside the real quota, both seeded as ``make run`` seeds them: the demo
enterprise opens the manual's 专利分级评价 and sees its 券后价 38元."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from common import demo
from common.testing.saga import SagaHarness, fake_identity

pytestmark = pytest.mark.broker


async def test_the_demo_enterprise_sees_the_manuals_price_after_voucher(
    saga: Callable[..., Awaitable[SagaHarness]],
) -> None:
    identity_app, _files = fake_identity()
    h = await saga(
        "quota",
        "catalog",
        overrides={"catalog": {"seed_demo": True}, "quota": {"seed_demo": True}},
        peers={"identity": identity_app},
    )
    await h.settle()
    client = h.client("catalog")
    patent = (await client.get("/api/v1/products?q=专利分级评价")).json()["items"][0]
    enterprise = h.issuer.member(demo.ENTERPRISE.id, caps=("enterprise",))
    detail = (await client.get(f"/api/v1/products/{patent['id']}", headers=enterprise.headers)).json()
    assert (detail["market_price_fen"], detail["platform_price_fen"]) == (8000, 7600)
    preview = detail["voucher_preview"]
    assert preview is not None, detail
    assert (preview["voucher_type"], preview["subsidy_fen"], preview["price_after_fen"]) == (
        "general",
        3800,
        3800,
    )
    assert preview["max_subsidy_fen"] == 13800
    assert preview["valid_from"] and preview["valid_to"]
    # Another enterprise without a voucher sees the product without a preview.
    stranger = h.issuer.member(caps=("enterprise",))
    other = (await client.get(f"/api/v1/products/{patent['id']}", headers=stranger.headers)).json()
    assert other["voucher_preview"] is None
