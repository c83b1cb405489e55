"""Every name or free text a request stores refuses control characters, bidi direction
overrides and zero-width-only text (``common.text``): each such field of every public
request body is tried here, so a new field typed as a bare ``str`` fails."""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from common import registry

# Identifiers, secrets and codes: checked against what exists, never shown as text.
NOT_TEXT = re.compile(
    r"(_id|_ids|^id|captcha_answer|sms_code|password|token|phone|uscc|id_number|account_number"
    r"|category|categories|voucher_type|kind|bank_reference|payer_account)$"
)


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from _routes(inner.routes)


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def _text_fields() -> Iterator[tuple[str, Any]]:
    seen: set[tuple[type, str]] = set()
    for svc in registry.SERVICES:
        settings = importlib.import_module(f"{svc.package}.config").Settings(environment="development")
        app = importlib.import_module(f"{svc.package}.main").create_app(settings)
        todo = [
            model
            for route in _routes(app.routes)
            if "/internal" not in route.path
            for param in route.dependant.body_params
            for model in _models(param.field_info.annotation)
        ]
        while todo:
            model = todo.pop()
            for name, field in model.model_fields.items():
                if (model, name) in seen:
                    continue
                seen.add((model, name))
                todo.extend(_models(field.annotation))
                shown = repr(field.annotation)
                if "str" not in shown or "Literal" in shown or NOT_TEXT.search(name):
                    continue
                annotation = (
                    Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
                )
                yield f"{model.__module__}.{model.__name__}.{name}", annotation


def _sample(adapter: TypeAdapter[Any], value: str) -> Any:
    """The value as the field takes it: a string, or a list of one string."""
    try:
        adapter.validate_python(["某公司"])
        return [value]
    except ValidationError:
        return value


@pytest.mark.parametrize(
    ("name", "annotation"), list(_text_fields()), ids=lambda v: v if isinstance(v, str) else ""
)
@pytest.mark.parametrize("bad", ["某公司\u202e", "某\u2067公司", "某公司\x07", "\u200b\u200d"])
def test_every_stored_name_and_text_refuses_invisible_and_control_characters(
    name: str, annotation: Any, bad: str
) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    with pytest.raises(ValidationError):
        adapter.validate_python(_sample(adapter, bad))


@pytest.mark.parametrize(
    ("name", "annotation"), list(_text_fields()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_stripped_text_that_must_not_be_empty_refuses_a_blank(name: str, annotation: Any) -> None:
    """A check nested between ``str`` and ``StringConstraints(strip_whitespace=True,
    min_length=1)`` measures the length before stripping: " " passed as "" (common.text)."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    try:
        adapter.validate_python(_sample(adapter, ""))
    except ValidationError:
        pass
    else:
        return  # an empty text is allowed here
    try:
        stripped = adapter.validate_python(_sample(adapter, "   "))
    except ValidationError:
        return
    assert stripped in ("   ", ["   "]), f"{name} took a blank as {stripped!r}"
