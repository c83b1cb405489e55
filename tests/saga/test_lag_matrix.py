"""Lag as a test tool (issue 12, section 7): for every branch of the journey, every step, and
each of the four services' relay and consumer, hold that part back at that step, let the rest
go on (a step refused because what it needs has not arrived is a legal outcome), release, and
the end state must be legal for every order and ``voucher-invariants`` must hold. On RabbitMQ
and in-process.

One test per transport, on one world: starting four services and probing every branch is
paid once, and the cells of one held part run together (each its own enterprise, provider and
order). A part is held only at the steps where it has work (the probe). A failure lists every
illegal cell: branch, step, the part held, what is wrong, the end state and what each step
did."""

from __future__ import annotations

import time

import pytest

from common.testing.saga import PARTS

from .journey import SERVICES, Cell, World, cells_for, probe, report, run_cells

pytestmark = [pytest.mark.long, pytest.mark.timeout(1800)]

HOLDS = [(s, p) for s in SERVICES for p in PARTS]


async def test_every_order_ends_legal_whichever_part_lags_at_whichever_step(world: World) -> None:
    started, cpu = time.monotonic(), time.process_time()
    baseline = await probe(world)
    costs = [f"probe: {len(baseline)} branches in {time.monotonic() - started:.0f}s"]
    failures: list[str] = []
    if any(c.problems for c in baseline):
        failures.append("with nothing held: " + report(baseline))
    ran: list[Cell] = []
    for hold in HOLDS:
        t = time.monotonic()
        cells = await world.cells([(branch, hold, at) for branch, at in cells_for(world, hold)])
        assert cells, f"{hold[0]}'s {hold[1]} has no work in any branch: the probe saw {world.probed}"
        await run_cells(world, cells, hold)
        ran += cells
        costs.append(f"{hold[0]} {hold[1]}: {len(cells)} cells in {time.monotonic() - t:.0f}s")
        if any(c.problems for c in cells):
            failures.append(f"{hold[0]} {hold[1]} held: " + report(cells))
    print(
        f"\n[lag] {world.h.kind}: {len(ran)} cells in {time.monotonic() - started:.0f}s "
        f"(this process's cpu {time.process_time() - cpu:.0f}s); " + "; ".join(costs)
    )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
