"""Every 422 a service answers names the field(s) at fault in ``errors[]``: a client shows
each message next to its field (the portal does), so a 422 without them leaves the user
guessing which input to change."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from common import errors as common_errors
from common import files, idempotency, registry, sanitize
from common.errors import Problem

_SAMPLES: dict[Any, Any] = {str: "x", int: 1, "str": "x", "int": 1}


def _modules() -> Iterator[ModuleType]:
    for svc in registry.SERVICES:
        yield importlib.import_module(f"{svc.package}.errors")
    yield from (common_errors, files, idempotency, sanitize)


def _argument_sets(name: str) -> list[tuple[Any, ...]] | None:
    """Every argument a factory that takes a code, a state or a refusal can be given (the
    sampler cannot guess those); None for the others."""
    from datetime import date

    from demands import errors as demand_errors
    from demands.domain import Refusal as DemandRefusal
    from fastapi.exceptions import RequestValidationError

    from contracts import domain as contract_domain
    from orders import domain as order_domain
    from payments import errors as payment_errors
    from payments.domain import Refusal as PaymentRefusal
    from quota import errors as quota_errors

    states, actions = list(contract_domain.State), list(contract_domain.Action)
    missing = {"loc": ("body", "name"), "msg": "Field required", "type": "missing"}
    cases: dict[str, list[tuple[Any, ...]]] = {
        "quota.errors.special_request": [(c,) for c in quota_errors._SPECIAL_TEXTS],
        "quota.errors.approval_amount": [(c,) for c in quota_errors._APPROVAL_TEXTS],
        "quota.errors.voucher_window_closed": [(date(2026, 12, 31),)],
        "orders.errors.refused": [
            (order_domain.Refusal(state, step, code),)
            for state in order_domain.Status
            for step in order_domain.Step
            for code in ("order_state_conflict", "cancellation_pending", "order_already_paid")
        ],
        "contracts.errors.wrong_party": [(a,) for a in actions],
        "contracts.errors.contract_state": [
            (contract_domain.Refused(s, a),) for s in states for a in actions
        ],
        "contracts.errors.contract_immutable": [(s,) for s in states],
        "payments.errors.from_refusal": [
            (PaymentRefusal(c, room_fen=100),)
            for c in [*payment_errors._BY_CODE, "remittance_exceeds_outstanding"]
        ],
        "demands.errors.from_refusal": [(DemandRefusal(c),) for c in demand_errors._BY_CODE],
        "common.errors.validation_problem": [(RequestValidationError([missing]),)],
    }
    return cases.get(name)


def _call(factory: Callable[..., Any]) -> Any:
    """Call a factory with a sample for each required argument (strings, numbers, lists)."""
    args: list[Any] = []
    for p in inspect.signature(factory).parameters.values():
        if p.default is not inspect.Parameter.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        ann = str(p.annotation)
        if "list" in ann or "Sequence" in ann or "Iterable" in ann:
            if "dict" in ann:
                args.append([{"field": "x", "message": "x"}])
            else:
                args.append([("field", "标签", "\u202e")] if "tuple" in ann else ["x"])
        elif "int" in ann:
            args.append(1)
        else:
            args.append("x")
    return factory(*args)


def _factories() -> Iterator[tuple[str, Callable[..., Any]]]:
    for module in _modules():
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_"):
                if inspect.signature(fn).return_annotation in (Problem, "Problem"):
                    yield f"{module.__name__}.{name}", fn


@pytest.mark.parametrize(
    ("name", "factory"), list(_factories()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_422_names_the_fields_at_fault(name: str, factory: Callable[..., Any]) -> None:
    arguments = _argument_sets(name)
    problems = [factory(*args) for args in arguments] if arguments is not None else [_call(factory)]
    assert problems, f"{name}: no arguments to call it with"
    for problem in problems:
        if problem.status != 422:
            continue
        assert problem.errors, f"{name} answers 422 {problem.code} without errors[]"
        assert all(e.get("field") and e.get("message") for e in problem.errors), name
