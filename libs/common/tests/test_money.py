"""Amounts as people see them: typed yuan, displayed yuan and 万元, and capitals on payment screens."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from common.money import amount_in_words, fen_to_yuan, format_wan, format_yuan, yuan_to_fen


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("10000", 1_000_000),
        ("10000.5", 1_000_050),
        ("10000.50", 1_000_050),
        (" 76 ", 7_600),
        ("0.01", 1),
        ("0", 0),
        (90000, 9_000_000),
        (Decimal("38.50"), 3_850),
        (Decimal("1.10"), 110),
    ],
)
def test_yuan_to_fen_is_exact(typed: str | int | Decimal, fen: int) -> None:
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize(
    "typed",
    ["0.001", "10.005", "-1", "-0.01", Decimal("-5"), -3, "abc", "", "1e3", "10,000", "NaN", "Infinity"],
)
def test_yuan_to_fen_rejects_what_would_lose_or_invent_money(typed: str | int | Decimal) -> None:
    with pytest.raises(ValueError):
        yuan_to_fen(typed)


def test_yuan_to_fen_refuses_floats() -> None:
    # 0.1 + 0.2 is not 0.3 in binary floating point: floats must not carry amounts.
    with pytest.raises(TypeError):
        yuan_to_fen(0.3)  # type: ignore[arg-type]


def test_fen_to_yuan_has_two_places_and_round_trips() -> None:
    assert fen_to_yuan(1_000_050) == Decimal("10000.50")
    assert str(fen_to_yuan(7_600)) == "76.00"
    assert str(fen_to_yuan(1)) == "0.01"
    for fen in [0, 1, 99, 100, 3_850, 21_000_000, 123_456_789]:
        assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (1_000_000, "10,000"),  # the manual's order amount
        (500_000, "5,000"),
        (1_000_050, "10,000.50"),
        (3_850, "38.50"),
        (5, "0.05"),
        (0, "0"),
        (30_000_000, "300,000"),
        (-1_000_050, "-10,000.50"),
    ],
)
def test_format_yuan_like_the_manual(fen: int, shown: str) -> None:
    assert format_yuan(fen) == shown


def test_format_yuan_without_thousands_separators() -> None:
    assert format_yuan(123_456_789, thousands=False) == "1234567.89"
    assert format_yuan(1_000_000, thousands=False) == "10000"


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (11_000_000, "11"),  # 110,000元
        (5_000_000, "5"),  # 5万 general voucher tier
        (500_000_000, "500"),  # the 500万 provider cap
        (1_500_000, "1.5"),
        (1_234_500, "1.23"),
        (1_235_000, "1.24"),  # half up
        (1, "0"),
        (0, "0"),
    ],
)
def test_format_wan_for_the_portal(fen: int, shown: str) -> None:
    assert format_wan(fen) == shown


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (21_000_000, "贰拾壹万元整"),
        (7_600, "柒拾陆元整"),
        (3_850, "叁拾捌元伍角"),
        (0, "零元整"),
        (1_000, "壹拾元整"),
        (9_000_000, "玖万元整"),
        (100_000_000, "壹佰万元整"),
        (105, "壹元零伍分"),
        (5, "伍分"),
        # The worked examples of the PBOC rules (《正确填写票据和结算凭证的基本规定》):
        (140_950, "壹仟肆佰零玖元伍角"),
        (600_714, "陆仟零柒元壹角肆分"),
        (32_504, "叁佰贰拾伍元零肆分"),
        (168_032, "壹仟陆佰捌拾元叁角贰分"),  # the rules allow this or 壹仟陆佰捌拾元零叁角贰分
        (10_700_053, "壹拾万柒仟元伍角叁分"),  # or 壹拾万柒仟元零伍角叁分
    ],
)
def test_amount_in_words(fen: int, words: str) -> None:
    assert amount_in_words(fen) == words


def test_amount_in_words_refuses_negatives_and_non_integers() -> None:
    with pytest.raises(ValueError):
        amount_in_words(-1)
    with pytest.raises(TypeError):
        amount_in_words(76.0)  # type: ignore[arg-type]


_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def _reference_words(fen: int) -> str:
    """An independent writer of the PBOC rules (omitting the optional 零s), to compare with."""

    def group(n: int) -> str:  # 0 < n < 10000
        out, gap = "", False
        for power, unit in ((3, "仟"), (2, "佰"), (1, "拾"), (0, "")):
            digit = n // 10**power % 10
            if digit == 0:
                gap = bool(out)
            else:
                out += ("零" if gap else "") + _DIGITS[digit] + unit
                gap = False
        return out

    if fen == 0:
        return "零元整"
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    groups = []
    while yuan:
        groups.append(yuan % 10_000)
        yuan //= 10_000
    text, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        value = groups[index]
        if value == 0:
            gap = gap or bool(text)
            continue
        if text and (gap or value < 1000):
            text += "零"
        text += group(value) + ("", "万", "亿")[index]
        gap = False
    if text:
        text += "元"
    if not jiao and not cents:
        return text + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif text:
        text += "零"
    return text + (_DIGITS[cents] + "分" if cents else "")


def test_amount_in_words_follows_the_rules_for_every_amount_a_voucher_can_have() -> None:
    """Every amount up to 1,000元 and a random sample up to 1亿元 (vouchers are ≤ 100万)."""
    rng = random.Random(20240913)
    amounts = [*range(0, 100_001), *(rng.randrange(10_000_000_000) for _ in range(20_000))]
    amounts += [
        rng.randrange(1, 10_000) * 10 ** rng.randrange(0, 7) + rng.randrange(0, 3) for _ in range(5_000)
    ]
    wrong = [(fen, amount_in_words(fen)) for fen in amounts if amount_in_words(fen) != _reference_words(fen)]
    assert wrong == []
