"""Personal data as another party sees it: phones, ID numbers, bank accounts and names, masked.

Every function takes whatever is stored (possibly empty, ``None``, or oddly short) and never
raises: masking runs while rendering a page, where an exception would hide the whole page.
The well-known shapes keep the conventional visible parts (138****6433, 450102********1234,
张*丰); anything else falls back to a rule that never shows more than half of the characters.
"""

from __future__ import annotations

import re

MASK = "*"

_MOBILE = re.compile(r"1\d{10}")
_SEPARATORS = re.compile(r"[\s\-]")


def _mask_middle(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, shrunk until at most half show."""
    n = len(value)
    if n == 0:
        return ""
    while head + tail > n // 2:
        if head >= tail and head > 0:
            head -= 1
        else:
            tail -= 1
    return value[:head] + MASK * (n - head - tail) + (value[n - tail :] if tail else "")


def mask_phone(phone: str | None) -> str:
    """``13812346433`` -> ``138****6433``, the convention wherever another party sees a phone.

    Spaces and dashes are dropped first; a ``+86``/``86`` country code is kept in front. Other
    shapes (landlines, foreign numbers) show at most the first 3 and last 4, and never more than
    half of the digits.
    """
    if not phone:
        return ""
    compact = _SEPARATORS.sub("", str(phone))
    country = ""
    for code in ("+86", "0086", "86"):
        if compact.startswith(code) and _MOBILE.fullmatch(compact[len(code) :]):
            country, compact = code, compact[len(code) :]
            break
    if _MOBILE.fullmatch(compact):
        return f"{country}{compact[:3]}{MASK * 4}{compact[-4:]}"
    return _mask_middle(compact, 3, 4)


def mask_id_number(value: str | None) -> str:
    """``450102199001011234`` -> ``450102********1234``.

    An 18-character number (resident ID, 港澳台居民居住证, new foreign permanent residence card)
    keeps the first 6 (the region) and the last 4, hiding the birth date. Shorter ones (HK/Macao
    and Taiwan travel permits, the old 15-character foreign permanent residence card) keep the
    first 2 and last 2, and never more than half.
    """
    if not value:
        return ""
    compact = _SEPARATORS.sub("", str(value)).upper()
    if len(compact) == 18:
        return compact[:6] + MASK * 8 + compact[-4:]
    return _mask_middle(compact, 2, 2)


def mask_account_number(value: str | None) -> str:
    """Bank accounts show only their last 4 digits: ``6222021234567891234`` -> ``**** **** 1234``.

    The masked part has a fixed width so the display neither reveals the account's length nor
    looks different for a 16- and a 19-digit card; the last 4 are what people check a
    payee's account by. An account of fewer than 8 characters shows at most half of them.
    """
    if not value:
        return ""
    compact = _SEPARATORS.sub("", str(value))
    if not compact:
        return ""
    tail = min(4, len(compact) // 2)
    return f"{MASK * 4} {MASK * 4} " + (compact[-tail:] if tail else MASK * 4)


def mask_name(name: str | None) -> str:
    """``张三丰`` -> ``张*丰``, ``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧**娜``, ``张`` -> ``*``.

    Three characters or more keep the first and the last (the usual convention, as in the
    spec); two keep the surname only; one shows nothing.
    """
    if not name:
        return ""
    text = str(name).strip()
    n = len(text)
    if n == 0:
        return ""
    if n == 1:
        return MASK
    if n == 2:
        return text[0] + MASK
    return text[0] + MASK * (n - 2) + text[-1]
