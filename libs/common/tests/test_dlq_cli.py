"""Dead letters: a handler that keeps failing parks its event with the error; once the handler
is fixed, ``voucher-dlq replay`` brings it back and it is applied exactly once.

RabbitMQ: ``<queue>.dlq`` with ``x-error`` headers; in-process: dead ``bus.redeliver`` timers in
the consumer's database (``--store database``)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from common.bus import cli
from common.testing.bus import CERTIFIED, Bus, LedgerBug, certified
from common.timers import schedule, utcnow


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    """``voucher-dlq <argv>`` as an operator runs it (in its own thread: it has its own loop);
    its JSON lines on stdout."""
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.fixture
def operator_env(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The environment the CLI reads, and the ``--store`` for this transport."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", bus.consumer_db.url)
    if bus.rabbit is not None:
        monkeypatch.setenv("AMQP_URL", bus.rabbit.url)
        monkeypatch.setenv("BUS_QUEUE_PREFIX", bus.rabbit.prefix)
        return ["--store", "rabbitmq"]
    return ["--store", "database"]


async def test_a_failing_handler_parks_its_events_and_a_replay_applies_them_once_fixed(
    bus: Bus, operator_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    store = operator_env
    bus.consumer.broken.add(CERTIFIED)  # a bug ships
    first, second = await bus.emit((certified("q1"), "q1"), (certified("q2"), "q2"))
    assert await bus.relay().drain() == 2
    await bus.eventually(lambda: _count(bus.dead_letters(), 2), what="both parked")

    tries = len(bus.retry_delays) + 1
    error = f"LedgerBug: ledger cannot apply {CERTIFIED}"
    for dead in await bus.dead_letters():
        assert (dead.error, dead.error_type, dead.attempts) == (error, LedgerBug.__name__, tries)
        if dead.headers is not None:  # the message in <prefix>ledger.dlq
            assert dead.headers["x-error"] == error
            assert dead.headers["x-consumer"] == "ledger"
            assert dead.headers["x-original-routing-key"] == CERTIFIED
            assert dead.headers["x-failed-at"]
        else:
            assert dead.timer_kind == "bus.redeliver"
    assert {bus.consumer.calls[e.event_id] for e in (first, second)} == {tries}
    assert await bus.applied() == Counter()

    # The operator lists them (listing leaves them in place)...
    listed = await run_cli(capsys, "list", "--service", "ledger", *store)
    assert sorted(item["kind"] for item in listed) == [CERTIFIED, CERTIFIED]
    assert {(item["consumer"], item["error"], item["attempts"]) for item in listed} == {
        ("ledger", error, tries)
    }
    assert len(await bus.dead_letters()) == 2

    full = await run_cli(capsys, "list", "--service", "ledger", "--full", *store)
    by_event = {item["event"]["event_id"]: item["id"] for item in full}  # message id / timer id

    # A replay before the fix gives the event another full round of tries, and parks it again.
    replay_first = ["replay", "--service", "ledger", "--id", by_event[first.event_id], *store]
    assert await run_cli(capsys, *replay_first) == [{"replayed": 1}]
    await bus.eventually(lambda: bus.consumer.calls[first.event_id] == 2 * tries, what="a second round")
    await bus.eventually(lambda: _count(bus.dead_letters(), 2), what="parked again")
    again = {d.event_id: d for d in await bus.dead_letters()}[first.event_id]
    assert (again.error, again.attempts) == (error, tries)
    if again.headers is not None:
        assert again.headers["x-original-routing-key"] == CERTIFIED

    # The handler is fixed; the operator replays that one event by its (new) id...
    bus.consumer.broken.clear()
    full = await run_cli(capsys, "list", "--service", "ledger", "--full", *store)
    by_event = {item["event"]["event_id"]: item["id"] for item in full}
    replay_first = ["replay", "--service", "ledger", "--id", by_event[first.event_id], *store]
    assert await run_cli(capsys, *replay_first) == [{"replayed": 1}]
    await bus.eventually(lambda: bus.all_applied([first]), what="the replayed event applied")
    assert [d.event_id for d in await bus.dead_letters()] == [second.event_id]

    # ...then the rest.
    assert await run_cli(capsys, "replay", "--service", "ledger", *store) == [{"replayed": 1}]
    await bus.eventually(lambda: bus.all_applied([second]))
    assert await bus.applied() == Counter({first.event_id: 1, second.event_id: 1})
    assert await bus.inbox() == Counter({first.event_id: 1, second.event_id: 1})
    assert await bus.dead_letters() == []
    assert await run_cli(capsys, "list", "--service", "ledger", *store) == []
    assert (bus.consumer.calls[first.event_id], bus.consumer.calls[second.event_id]) == (
        2 * tries + 1,
        tries + 1,
    )


async def _count(dead_letters: Any, n: int) -> bool:
    return len(await dead_letters) == n


@pytest.mark.parametrize("transport_kind", ["inprocess"])
async def test_the_cli_lists_and_revives_a_services_dead_timers(
    bus: Bus, operator_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only events: any timer that kept failing (a reminder, a time-out) is a dead letter."""
    fixed = False
    runs = 0

    async def remind(*_: Any) -> None:
        nonlocal runs
        runs += 1
        if not fixed:
            raise ConnectionError("smtp down")

    bus.timers.register("orders.remind", remind)  # the service's one timer worker
    async with bus.consumer_db.transaction() as s:
        await schedule(s, "orders.remind", "order-1", utcnow() - timedelta(seconds=1), {"order": "order-1"})
    await bus.eventually(lambda: bus.dead_letters(), what="timer parked")

    tries = len(bus.retry_delays) + 1
    (item,) = await run_cli(capsys, "list", "--service", "ledger", *operator_env)
    assert (item["kind"], item["consumer"], item["attempts"]) == ("orders.remind", "orders.remind", tries)
    assert item["error"] == "ConnectionError: smtp down"
    assert runs == tries

    fixed = True
    assert await run_cli(capsys, "replay", "--service", "ledger", *operator_env) == [{"replayed": 1}]
    await bus.eventually(lambda: _no_timers(bus), what="the revived timer ran")
    assert runs == tries + 1


async def _no_timers(bus: Bus) -> bool:
    return await bus.timer_rows() == []


async def test_export_writes_the_parked_events_and_discard_removes_them(
    bus: Bus, operator_env: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """An event nobody will ever apply (a test message, a bug's own output): the operator keeps a
    copy (export, which leaves everything in place), then discards it, by id or all."""
    store = operator_env
    bus.consumer.broken.add(CERTIFIED)
    first, second, third = await bus.emit(
        (certified("d1"), "d1"), (certified("d2"), "d2"), (certified("d3"), "d3")
    )
    assert await bus.relay().drain() == 3
    await bus.eventually(lambda: _count(bus.dead_letters(), 3), what="all three parked")

    # export to a file: JSON lines with each event, nothing removed
    out = tmp_path / "ledger-dlq.jsonl"
    assert await run_cli(capsys, "export", "--service", "ledger", "--out", str(out), *store) == []
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(item["event"]["event_id"] for item in exported) == sorted(
        e.event_id for e in (first, second, third)
    )
    assert all(item["error"] and item["kind"] == CERTIFIED for item in exported)
    assert len(await bus.dead_letters()) == 3
    # ... or to stdout
    printed = await run_cli(capsys, "export", "--service", "ledger", *store)
    assert sorted(i["id"] for i in printed) == sorted(i["id"] for i in exported)
    assert len(await bus.dead_letters()) == 3

    # discard asks for --id or --all: nothing is removed by a bare command
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["discard", "--service", "ledger", *store]) == 2
    assert "--all" in capsys.readouterr().err
    assert len(await bus.dead_letters()) == 3

    # discard one by id: it is printed (with its event) and gone; the others stay
    by_event = {item["event"]["event_id"]: item["id"] for item in exported}
    removed = await run_cli(
        capsys, "discard", "--service", "ledger", "--id", by_event[first.event_id], *store
    )
    assert [r.get("event", {}).get("event_id") for r in removed[:-1]] == [first.event_id]
    assert removed[-1] == {"discarded": 1}
    assert sorted(d.event_id for d in await bus.dead_letters()) == sorted([second.event_id, third.event_id])

    # discard all
    removed = await run_cli(capsys, "discard", "--service", "ledger", "--all", *store)
    assert sorted(r["event"]["event_id"] for r in removed[:-1]) == sorted([second.event_id, third.event_id])
    assert removed[-1] == {"discarded": 2}
    assert await bus.dead_letters() == []
    assert await run_cli(capsys, "list", "--service", "ledger", *store) == []
    assert await bus.applied() == Counter()  # discarded, never applied
