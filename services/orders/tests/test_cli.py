"""``voucher-orders``: an order and its timeline, and the orders stalled waiting for quota."""

from __future__ import annotations

import pytest

from orders import cli


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


async def test_the_cli_shows_an_order_with_its_timeline_and_lists_the_orders_stalled_behind_quota(
    world, capsys
) -> None:
    w = await world()
    waiting = await w.submit()
    url = w.h["orders"].runtime.settings.db_url
    assert await cli.run(["--database-url", url, "show", waiting["order_no"]]) == 0
    out = capsys.readouterr().out
    assert waiting["order_no"] in out and "pending_voucher (待接单)" in out and "申请服务" in out
    assert await cli.run(["--database-url", url, "show", "ORD000000000000000"]) == 1
    capsys.readouterr()

    assert await cli.run(["--database-url", url, "stalled", "--minutes", "10"]) == 0
    assert "0 order(s)" in capsys.readouterr().out
    assert await cli.run(["--database-url", url, "stalled", "--minutes", "0"]) == 1
    assert waiting["order_no"] in capsys.readouterr().out
    await w.reserved(waiting)
    await w.settle()
    assert await cli.run(["--database-url", url, "stalled", "--minutes", "0"]) == 0
