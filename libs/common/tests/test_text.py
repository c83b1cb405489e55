"""common.text: names and free text refuse what shows differently from what is stored."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from common.rules import Refusal
from common.text import FreeText, Name, check_text


class Form(BaseModel):
    name: Annotated[Name, Field(min_length=1, max_length=50)]
    note: FreeText = ""


@pytest.mark.parametrize(
    "name",
    ["广西南宁某某机械有限公司", "Zhang San", "李·明", "O'Brien & Co.", "桂林🚀科技 👨‍👩‍👧"],
)
def test_ordinary_names_and_texts_pass(name: str) -> None:
    form = Form(name=name, note=f"第一行\n第二行\r\n{name}")
    assert form.name == name


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("某公司\u202e司公某", "文字方向"),  # RIGHT-TO-LEFT OVERRIDE
        ("\u202a某公司", "文字方向"),
        ("某\u2066公司\u2069", "文字方向"),
        ("某公司\x07", "控制字符"),
        ("某公司\x1b[31m", "控制字符"),
        ("某公司\x7f", "控制字符"),
        ("某公司\u0085", "控制字符"),
        ("某\n公司", "控制字符"),  # a name is one line
        ("某\t公司", "控制字符"),
        ("\u200b", "不可见"),
        ("\u200b\u200c\u200d\ufeff", "不可见"),
        (" \u200b ", "不可见"),
    ],
)
def test_a_name_with_controls_direction_overrides_or_only_invisible_characters_is_refused(
    value: str, why: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name=value)
    (error,) = refused.value.errors()
    assert error["loc"] == ("name",) and why in error["msg"]


@pytest.mark.parametrize("value", ["正文\u202e", "正文\x00", "正文\x0b", "\ufeff\u200b", "正文\x1b"])
def test_free_text_refuses_them_too_but_keeps_newlines(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name="某公司", note=value)
    assert [e["loc"] for e in refused.value.errors()] == [("note",)]


def test_with_stripping_the_check_goes_after_the_constraints_so_a_blank_stays_refused() -> None:
    """Nesting ``Name`` inside ``StringConstraints(strip_whitespace=True, min_length=1)``
    checks the length before stripping and lets " " through as "" (quota's reject reason
    did); the documented order keeps the refusal."""
    from pydantic import StringConstraints, TypeAdapter

    from common.text import NAME_CHECK

    stripped = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), NAME_CHECK])
    with pytest.raises(ValidationError):
        stripped.validate_python("   ")
    with pytest.raises(ValidationError):
        stripped.validate_python(" 某\u202e ")
    assert stripped.validate_python(" 某公司 ") == "某公司"


@pytest.mark.parametrize(
    ("value", "newlines", "detail"),
    [
        ("某公司\u202e", False, "不能包含文字方向控制符（U+202E）"),
        ("某\n公司", False, "不能包含控制字符（U+000A）"),
        ("正文\x00", True, "不能包含控制字符（U+0000）"),
        ("\ufeff\u200b", True, "不能只由不可见字符组成"),
    ],
)
def test_the_check_refuses_with_a_validation_error_in_the_fields_words(
    value: str, newlines: bool, detail: str
) -> None:
    with pytest.raises(Refusal) as refused:
        check_text(value, newlines=newlines)
    assert refused.value == Refusal("validation_error", detail=detail)


@pytest.mark.parametrize(("value", "newlines"), [("某公司", False), ("第一行\r\n第二行", True), ("", False)])
def test_the_check_lets_what_shows_as_stored_through(value: str, newlines: bool) -> None:
    check_text(value, newlines=newlines)
