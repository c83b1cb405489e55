"""Money is integer fen (分) everywhere: in the database, in events, in API bodies.

Floats never touch an amount: a float cannot hold 0.1 yuan exactly, and a subsidy computed
in floats can be off by a fen that then never reconciles. Conversions to and from yuan go
through :class:`~decimal.Decimal` and refuse anything that is not a whole number of fen.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

import cn2an
from pydantic import Field, Strict

from common.errors import FIELD_LABELS

FEN_PER_YUAN = 100
FEN_PER_WAN = 1_000_000  # 1万元 = 10,000 yuan = 1,000,000 fen

# --- money and flags in request bodies -------------------------------------------------------
# Pydantic's lax mode turns `true` into 1 fen, "500" into 500 and 1000.0 into 1000, and
# "yes" / 1 / "true" into True. In a public request model an amount is a JSON integer of fen
# and a flag a JSON boolean, nothing else: anything else is a 422 naming the field
# ("应为整数" / "应为布尔值", common.errors). Bounds that differ per field are added where the
# field is declared: ``total_fen: Fen = Field(le=..., description=...)``.
Fen = Annotated[int, Strict(), Field(ge=0)]
PositiveFen = Annotated[int, Strict(), Field(gt=0)]
Flag = Annotated[bool, Strict()]

# How a 422 names the money fields and flags of the request models, in Chinese like the rest.
FIELD_LABELS.update(
    {
        "amount_fen": "金额",
        "total_fen": "合同总金额",
        "deposit_fen": "合同定金",
        "requested_fen": "申领额度",
        "basis_fen": "计算依据金额",
        "approved_fen": "核定额度",
        "cap_fen": "补贴上限",
        "yearly_cap_fen": "年度申领上限",
        "pending_budget_fen": "待审核预算",
        "market_price_fen": "市场指导价",
        "platform_price_fen": "平台销售价",
        "max_subsidy_fen": "最高补贴",
        "use_voucher": "使用服务券",
    }
)

_CENT = Decimal("0.01")
_PLAIN_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def yuan_to_fen(value: str | int | Decimal) -> int:
    """Exact yuan -> fen: ``"10000.5"`` -> 1000050.

    Raises ``ValueError`` for negatives, more than two decimals, anything but plain digits
    with an optional decimal part (no "1e3", no "10,000"), NaN/infinity; ``TypeError`` for
    floats: an amount a person typed must not be silently rounded or reinterpreted.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"amount must be str, int or Decimal, not {type(value).__name__}")
    if isinstance(value, str):
        value = value.strip()
        if not _PLAIN_AMOUNT.fullmatch(value):
            raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative: {value!r}")
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"amount has more than 2 decimals: {value!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    """Fen -> yuan as a Decimal with exactly two places (1000050 -> Decimal("10000.50"))."""
    return (Decimal(_as_fen(fen)) / FEN_PER_YUAN).quantize(_CENT)


def format_yuan(fen: int, *, thousands: bool = True) -> str:
    """Yuan for display as the manual shows them: ``10,000`` for whole yuan, ``10,000.50`` otherwise.

    Whole amounts drop ".00" because that is how the manual prints order amounts (``10,000``,
    ``5,000``); any fen are always shown with both decimals so ``.5`` never reads as 5 fen.
    """
    fen = _as_fen(fen)
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    text = f"{whole:,}" if thousands else str(whole)
    if cents:
        text += f".{cents:02d}"
    return sign + text


def format_wan(fen: int) -> str:
    """万元 figures for the portal: 110,000元 -> ``"11"``, 12,345元 -> ``"1.23"``.

    At most two decimals (rounded half up), trailing zeros dropped, no thousands separators:
    the portal prints these next to a "万元" unit, where "1.50" would look like a typo.
    """
    wan = (Decimal(_as_fen(fen)) / FEN_PER_WAN).quantize(_CENT, rounding=ROUND_HALF_UP)
    text = f"{wan:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def amount_in_words(fen: int) -> str:
    """Chinese capitals (大写金额) for payment screens: 21000000 -> ``"贰拾壹万元整"``.

    Uses cn2an's ``rmb`` mode, fed a two-decimal string (never a float, so no binary
    rounding). We compared its output with the PBOC rules for writing amounts in capitals
    (《正确填写票据和结算凭证的基本规定》) over every amount up to 3,000元 and several hundred
    thousand random ones up to 1万亿元, and found no amount where it breaks them:

    - "整" after 元 when there are no 角/分 (76元 -> 柒拾陆元整), none after 分, and none after
      角 (38.50 -> 叁拾捌元伍角), which the rules allow ("角之后可以不写整字");
    - a "零" where 角 is 0 but 分 is not (1.05 -> 壹元零伍分) and for zeros inside a number
      (1409.50 -> 壹仟肆佰零玖元伍角);
    - no "零" where the 元 or 万 digit is 0 but the next lower digit is not (1680.32 ->
      壹仟陆佰捌拾元叁角贰分, 107000.53 -> 壹拾万柒仟元伍角叁分): the rules allow either form;
    - "壹拾" rather than "拾" for 10-19 (10元 -> 壹拾元整), which is what cheques require.

    So no output is rewritten. Zero is "零元整" (cn2an gives that too); amounts below one yuan
    start at the 角/分 (0.05 -> 伍分), as the rules' examples do. Negative amounts have no
    capitals on a payment screen and raise ``ValueError``.
    """
    fen = _as_fen(fen)
    if fen < 0:
        raise ValueError("amount in words needs a non-negative amount")
    whole, cents = divmod(fen, FEN_PER_YUAN)
    return cn2an.an2cn(f"{whole}.{cents:02d}", "rmb")


def _as_fen(fen: int) -> int:
    # bool is an int subclass; True fen is always a bug.
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    return fen
