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
    try:
        problem = _call(factory)
    except (AttributeError, KeyError, TypeError) as exc:  # arguments the sampler cannot guess
        pytest.skip(f"{name}: {exc!r}")
    if problem.status != 422:
        return
    assert problem.errors, f"{name} answers 422 {problem.code} without errors[]"
    assert all(e.get("field") and e.get("message") for e in problem.errors), name
