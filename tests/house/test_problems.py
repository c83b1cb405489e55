"""Every 422 a service answers names the field(s) at fault in ``errors[]``: a client shows
each message next to its field (the portal does), so a 422 without them leaves the user
guessing which input to change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .problem_codes import factories, problems_of


@pytest.mark.parametrize(
    ("name", "factory"), list(factories()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_422_names_the_fields_at_fault(name: str, factory: Callable[..., Any]) -> None:
    problems = problems_of(name, factory)
    assert problems, f"{name}: no arguments to call it with"
    for problem in problems:
        if problem.status != 422:
            continue
        assert problem.errors, f"{name} answers 422 {problem.code} without errors[]"
        assert all(e.get("field") and e.get("message") for e in problem.errors), name
