"""How the portal prints what the API answers, as the manual prints it: 万元 on the home
figures, yuan with thousands separators elsewhere, Chinese capitals on payment screens,
Beijing time, masked phones. Registered as Jinja2 filters by :func:`install`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, Undefined

from common.masking import mask_phone
from common.money import amount_in_words, format_wan, format_yuan

BEIJING = ZoneInfo("Asia/Shanghai")


def _fen(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, Undefined):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def yuan(value: Any) -> str:
    """Fen -> ``10,000`` (``10,000.50`` with fen); a missing amount is ``-``."""
    fen = _fen(value)
    return "-" if fen is None else format_yuan(fen)


def wan(value: Any) -> str:
    fen = _fen(value)
    return "0" if fen is None else format_wan(fen)


def upper(value: Any) -> str:
    fen = _fen(value)
    return "" if fen is None or fen < 0 else amount_in_words(fen)


def yuan_input(value: Any) -> str:
    """Fen -> what a yuan field shows back (``100000.50``, no separators)."""
    fen = _fen(value)
    if fen is None:
        return ""
    whole, cents = divmod(fen, 100)
    return f"{whole}.{cents:02d}" if cents else str(whole)


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value or isinstance(value, Undefined):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def beijing(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """The API's UTC time shown in Beijing time (+08:00); a date stays a date."""
    moment = parse_time(value)
    if moment is None:
        return str(value or "-") if value else "-"
    if moment.tzinfo is None:
        return moment.strftime(fmt if len(str(value)) > 10 else "%Y-%m-%d")
    return moment.astimezone(BEIJING).strftime(fmt)


def day(value: Any) -> str:
    return beijing(value, "%Y-%m-%d")


def phone(value: Any) -> str:
    return mask_phone(str(value)) if value else ""


def install(env: Environment) -> None:
    env.filters.update(
        yuan=yuan, wan=wan, upper=upper, yuan_input=yuan_input, beijing=beijing, day=day, mask_phone=phone
    )
