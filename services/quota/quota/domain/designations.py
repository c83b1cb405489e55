"""Designation lists: the rows of an imported file, checked against the campaign's tiers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from common.idnumbers import InvalidNumber, validate_uscc


def known_designations(tiers: Iterable[dict[str, Any]]) -> set[str]:
    return {d for t in tiers for d in t.get("designations", [])}


HEADER_WORDS = {"uscc", "统一社会信用代码", "designation", "企业类型", "认定类型"}


def is_header(cells: Sequence[Any]) -> bool:
    return any(str(c or "").strip().lower() in HEADER_WORDS for c in cells)


def check_row(
    cells: Sequence[Any], known: set[str], seen: set[tuple[str, str]]
) -> tuple[str, str, str | None]:
    """(uscc as given or normalised, designation, reason it is refused or None). ``seen``
    collects the accepted (uscc, designation) pairs so a repeat in the file is refused."""
    raw_uscc = str(cells[0] if len(cells) > 0 and cells[0] is not None else "").strip()
    designation = str(cells[1] if len(cells) > 1 and cells[1] is not None else "").strip()
    try:
        number = validate_uscc(raw_uscc)
    except InvalidNumber as exc:
        return raw_uscc, designation, exc.message
    if designation not in known:
        return number, designation, f"未知的企业类型“{designation}”" if designation else "企业类型不能为空"
    if (number, designation) in seen:
        return number, designation, "文件中重复的行"
    seen.add((number, designation))
    return number, designation, None
