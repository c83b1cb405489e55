"""common.rules.Refusal: the one way a rule says no."""

from __future__ import annotations

import pytest

from common.rules import Refusal


def test_a_refusal_carries_its_code_its_words_and_what_it_names() -> None:
    refusal = Refusal("price_above_market", detail="平台价不能高于市场指导价", limit_fen=100)
    assert refusal.code == "price_above_market"
    assert refusal.detail == "平台价不能高于市场指导价"
    assert refusal.facts == {"limit_fen": 100}
    assert refusal.limit_fen == 100  # a fact reads as an attribute
    assert str(refusal) == "price_above_market"


def test_an_unknown_fact_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        Refusal("x").state  # noqa: B018


def test_refusals_saying_the_same_are_equal() -> None:
    assert Refusal("x", state="a") == Refusal("x", state="a")
    assert Refusal("x", state="a") != Refusal("x", state="b")
    assert Refusal("x") != Refusal("y")
    assert Refusal("x") != Refusal("x", detail="words")
    assert repr(Refusal("x", detail="d", state="a")) == "Refusal('x', detail='d', state='a')"


def test_a_refusal_is_raised_and_caught_like_any_exception() -> None:
    with pytest.raises(Refusal) as caught:
        raise Refusal("over_yearly_cap", cap_left_fen=0)
    assert caught.value.code == "over_yearly_cap" and caught.value.cap_left_fen == 0
