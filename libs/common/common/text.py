"""Names and free text: refuse what would show differently from what is stored.

A control character (a bell, an escape sequence, DEL, a C1 control), a bidi direction
override or isolate (U+202A–U+202E, U+2066–U+2069: "某公司\\u202e" reads backwards on
screen and in a signed contract) and a text made only of zero-width characters (U+200B–U+200D,
U+FEFF: a name that looks empty) have no place in a person's or organisation's name or in
text a person writes. Request schemas type such fields with these, so the refusal is the
usual 422 naming the field (``errors[]``), before anything is stored:

- :data:`Name` for one line: names of people and organisations, titles, labels, addresses,
  references;
- :data:`FreeText` for text that may run over lines (descriptions, contract terms,
  messages, reasons): newlines (``\\n``, ``\\r``) are allowed, other control characters not.

Zero-width characters inside visible text stay allowed (U+200D joins emoji sequences).
Combine with length limits as usual: ``Annotated[Name, Field(min_length=1, max_length=50)]``.
With ``strip_whitespace`` put the check after the constraints, on ``str``:
``Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), NAME_CHECK]``.
(``Annotated[Name, StringConstraints(strip_whitespace=True, min_length=1)]`` would check the
length before stripping, and let a blank " " through as "".)
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

from common.rules import Refusal

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\ufeff")
NEWLINES = frozenset("\n\r")


def check_text(value: str, *, newlines: bool) -> None:
    """Refuse ``value`` as a name (``newlines=False``) or as free text: a
    :class:`~common.rules.Refusal` ``validation_error`` whose ``detail`` says why in Chinese
    (the message of the field's 422)."""
    for ch in value:
        if ch in BIDI_CONTROLS:
            raise Refusal("validation_error", detail=f"不能包含文字方向控制符（U+{ord(ch):04X}）")
        if unicodedata.category(ch) == "Cc" and not (newlines and ch in NEWLINES):
            raise Refusal("validation_error", detail=f"不能包含控制字符（U+{ord(ch):04X}）")
    if value and all(ch in ZERO_WIDTH or ch.isspace() for ch in value) and not value.isspace():
        raise Refusal("validation_error", detail="不能只由不可见字符组成")


def _checked(value: str, *, newlines: bool) -> str:
    """A pydantic validator's answer: the value, or its refusal's words as a ValueError."""
    try:
        check_text(value, newlines=newlines)
    except Refusal as refusal:
        raise ValueError(refusal.detail) from None
    return value


def _name(value: str) -> str:
    return _checked(value, newlines=False)


def _free_text(value: str) -> str:
    return _checked(value, newlines=True)


NAME_CHECK = AfterValidator(_name)
FREE_TEXT_CHECK = AfterValidator(_free_text)
Name = Annotated[str, NAME_CHECK]
FreeText = Annotated[str, FREE_TEXT_CHECK]
