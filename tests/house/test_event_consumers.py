"""Every event type a service publishes has a consumer in the registry.

On RabbitMQ an event nobody is bound to goes to the alternate exchange's queue
(``voucher.events.unrouted``) and stays there: with a type that has no consumer at all, every
order, payment or certification leaves a message behind for ever (the queue is bounded now,
which drops the oldest, so nothing there is a record either). Such a type is either missing
from a consumer's ``consumes`` or should not be published.

Which types are published: every payload type of the public contract (``common.events``, where
every event is defined and registered), not a search of the services' code for ``publish``
calls, which a payload built in one place and published in another (quota's ledger events,
identity's suspension/restoration) would escape. The code is searched only to say where a
type without consumer is built."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from common import events, registry
from common.events import EventPayload

ROOT = Path(__file__).resolve().parents[2]


def _is_contract(cls: type) -> bool:
    """Defined in common.events or in a service's package; not a test's own type (a test
    module of the same session may register one)."""
    module = cls.__module__
    packages = tuple(f"{svc.package}." for svc in registry.SERVICES)
    return module == events.__name__ or (module.startswith(packages) and ".tests" not in module)


def _payload_types() -> dict[str, type[EventPayload]]:
    """event type -> its payload class: every registered version, and any subclass of
    EventPayload that names an event type (one defined outside common.events too)."""
    found = {name: cls for (name, _version), cls in events.registered_events().items() if _is_contract(cls)}
    todo = list(EventPayload.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if isinstance(getattr(cls, "event_type", None), str) and _is_contract(cls):
            found.setdefault(cls.event_type, cls)
    return found


def _built_in(class_names: set[str]) -> dict[str, list[str]]:
    """class name -> the service source files (not tests) that call it."""
    where: dict[str, list[str]] = {}
    for svc in registry.SERVICES:
        package = ROOT / "services" / svc.name / svc.package
        for path in sorted(package.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in class_names:
                    files = where.setdefault(name, [])
                    rel = str(path.relative_to(ROOT))
                    if rel not in files:
                        files.append(rel)
    return where


def _unconsumed(types: Iterable[str]) -> list[str]:
    """The types no registry row consumes (none of the services' queues is bound to them)."""
    topology = registry.topology()
    return sorted(t for t in types if not topology.consumers_of(t))


def test_every_published_event_type_has_a_consumer() -> None:
    types = _payload_types()
    orphans = _unconsumed(types)
    where = _built_in({types[t].__name__ for t in orphans})
    lines = [
        f"{t} ({types[t].__name__}, built in {', '.join(where.get(types[t].__name__, [])) or 'no service code'})"
        for t in orphans
    ]
    assert not orphans, (
        "published event types no service consumes (each one stays in voucher.events.unrouted on "
        "RabbitMQ): add them to a consumer's `consumes` in common.registry, or stop publishing them:\n  "
        + "\n  ".join(lines)
    )


def test_the_search_finds_the_types_every_service_publishes() -> None:
    """The code search above names a publisher for types that have one (so its report can be
    trusted), e.g. orders' submission and quota's reservation."""
    where = _built_in({"OrderSubmitted", "VoucherReserved", "ContractSigned"})
    assert "services/orders/orders/service.py" in where["OrderSubmitted"]
    assert any(path.startswith("services/quota/") for path in where["VoucherReserved"])
    assert any(path.startswith("services/contracts/") for path in where["ContractSigned"])


def test_a_published_type_nobody_consumes_is_caught() -> None:
    """A type published with no consumer is found (and a consumed one is not)."""
    assert _unconsumed(["orders.order_submitted", "orders.order_archived"]) == ["orders.order_archived"]
