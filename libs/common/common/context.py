"""Tracking ids carried through a request or a message (contextvars)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# The event being handled, if any: events written while handling it name it as their cause.
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


@contextmanager
def tracking(
    *, request_id: str | None = None, correlation_id: str | None = None, causation_id: str | None = None
) -> Iterator[None]:
    tokens = [
        request_id_var.set(request_id),
        correlation_id_var.set(correlation_id),
        causation_id_var.set(causation_id),
    ]
    try:
        yield
    finally:
        causation_id_var.reset(tokens[2])
        correlation_id_var.reset(tokens[1])
        request_id_var.reset(tokens[0])
