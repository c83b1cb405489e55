"""How a rule says no: one :class:`Refusal` in every service.

A service's ``domain`` is pure (no I/O, no HTTP). When one of its rules refuses, it says so with
a ``Refusal``: ``code`` is the stable problem code the client will see, ``facts`` what the
problem's text names (the current state, a limit), and ``detail`` the rule's own words where the
rule words its answer itself (a weak password, a bank account number of the wrong length).

- A rule whose caller simply stops raises it: ``raise Refusal("price_above_market")``.
- A decision whose caller needs both outcomes as data returns it: orders' ``decide`` returns
  ``Move | Refusal``; a field check that a form runs beside others returns ``Refusal | None`` so
  that every bad field is reported at once.

The service's ``errors.from_refusal`` is the one place that turns a refusal into its problem
(status, Chinese text): the domain never builds a problem, and a router never sees a refusal.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """A rule said no. ``code``: the stable problem code; ``facts``: what its text names;
    ``detail``: the rule's own words, when it has them. Two refusals are equal when they say
    the same (so a pure rule's table test can compare them)."""

    def __init__(self, code: str, /, *, detail: str | None = None, **facts: Any) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.facts = facts

    def __getattr__(self, name: str) -> Any:  # refusal.state reads facts["state"]
        facts = self.__dict__.get("facts", {})
        if name in facts:
            return facts[name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Refusal):
            return NotImplemented
        return (self.code, self.detail, self.facts) == (other.code, other.detail, other.facts)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable like any exception

    def __repr__(self) -> str:
        said = [repr(self.code)]
        if self.detail is not None:
            said.append(f"detail={self.detail!r}")
        said += [f"{key}={value!r}" for key, value in self.facts.items()]
        return f"Refusal({', '.join(said)})"
