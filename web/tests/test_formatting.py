"""The portal's number, time and phone formats (web.formatting), as the manual prints them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jinja2 import Environment

from web import formatting


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (1_000_000, "10,000"),
        (1_000_050, "10,000.50"),
        (7600, "76"),
        (0, "0"),
        ("3800", "38"),
        (None, "-"),
        ("", "-"),
        ("x", "-"),
    ],
)
def test_yuan_has_thousands_separators_and_fen_only_when_there_are_some(fen: object, shown: str) -> None:
    assert formatting.yuan(fen) == shown


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (30_000_000, "30"),
        (500_000_000, "500"),
        (1_234_500, "1.23"),
        (1_235_000, "1.24"),
        (150_000_000, "150"),
        (None, "0"),
    ],
)
def test_wan_for_the_home_figures(fen: object, shown: str) -> None:
    assert formatting.wan(fen) == shown


def test_upper_is_the_payment_screens_capitals() -> None:
    assert formatting.upper(21_000_000) == "贰拾壹万元整"
    assert formatting.upper(3850) == "叁拾捌元伍角"
    assert formatting.upper(None) == "" and formatting.upper(-1) == ""


@pytest.mark.parametrize(
    ("fen", "typed"), [(10_000_050, "100000.50"), (10_000_000, "100000"), (5, "0.05"), (None, "")]
)
def test_yuan_input_is_what_a_yuan_field_shows_back(fen: object, typed: str) -> None:
    assert formatting.yuan_input(fen) == typed


def test_times_are_shown_in_beijing_time() -> None:
    assert formatting.beijing("2024-11-15T11:10:35Z") == "2024-11-15 19:10:35"
    assert formatting.beijing("2024-12-31T16:30:00+00:00") == "2025-01-01 00:30:00"
    assert formatting.beijing(datetime(2024, 1, 1, 0, 0, tzinfo=UTC)) == "2024-01-01 08:00:00"
    assert formatting.day("2024-12-31T16:30:00Z") == "2025-01-01"
    assert formatting.beijing("2024-09-13") == "2024-09-13"  # a date stays a date
    assert formatting.beijing(None) == "-" and formatting.beijing("") == "-"
    assert formatting.beijing("not a time") == "not a time"


def test_phones_are_masked() -> None:
    assert formatting.phone("13812346433") == "138****6433"
    assert formatting.phone(None) == "" and formatting.phone("") == ""


def test_install_registers_every_filter() -> None:
    env = Environment(autoescape=True)
    formatting.install(env)
    template = env.from_string(
        "{{ a|yuan }} {{ a|wan }} {{ a|upper }} {{ t|beijing }} {{ t|day }} {{ p|mask_phone }}"
    )
    assert template.render(a=100_000_000, t="2024-11-15T11:10:35Z", p="13812346433") == (
        "1,000,000 100 壹佰万元整 2024-11-15 19:10:35 2024-11-15 138****6433"
    )
