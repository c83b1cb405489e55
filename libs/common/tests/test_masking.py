"""What another party sees of someone's phone, ID number, bank account and name."""

from __future__ import annotations

import pytest

from common.masking import mask_account_number, mask_id_number, mask_name, mask_phone


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ("13812346433", "138****6433"),  # the spec's example
        ("138 1234 6433", "138****6433"),
        ("138-1234-6433", "138****6433"),
        ("+8613812346433", "+86138****6433"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(phone: str | None, shown: str) -> None:
    assert mask_phone(phone) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("450102199001011234", "450102********1234"),
        ("45010219900101123x", "450102********123X"),
        ("810000199001011234", "810000********1234"),  # 港澳台居民居住证
        ("H12345678", "H1*****78"),  # 港澳居民来往内地通行证
        ("12345678", "12****78"),  # 台湾居民来往大陆通行证
        ("USA110086061234", "US***********34"),  # old foreign permanent residence card
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id_number(value: str | None, shown: str) -> None:
    assert mask_id_number(value) == shown


def test_masked_id_hides_the_birth_date() -> None:
    assert "19900101" not in mask_id_number("450102199001011234")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("6222021234567891234", "**** **** 1234"),
        ("6222 0212 3456 7891", "**** **** 7891"),
        ("12345678", "**** **** 5678"),
        ("123456", "**** **** 456"),
        ("1", "**** **** ****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_account_number(value: str | None, shown: str) -> None:
    assert mask_account_number(value) == shown


def test_masked_accounts_do_not_reveal_their_length() -> None:
    assert len(mask_account_number("6222021234567891234")) == len(mask_account_number("6222021234567891"))


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("张三丰", "张*丰"),
        ("张三", "张*"),
        ("欧阳娜娜", "欧**娜"),
        ("张", "*"),
        (" 李四 ", "李*"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name: str | None, shown: str) -> None:
    assert mask_name(name) == shown


@pytest.mark.parametrize("length", range(0, 25))
def test_odd_shapes_never_raise_and_never_show_more_than_half(length: int) -> None:
    """Only the conventional shapes (mobiles, 18-character IDs) show more; these digits are no mobile."""
    value = "".join(str(2 + i % 8) for i in range(length))
    masks = [mask_phone, mask_account_number] + ([] if length == 18 else [mask_id_number])
    for mask in masks:
        shown = mask(value)
        visible = sum(1 for c in shown if c not in "* ")
        assert visible <= length // 2, (mask.__name__, value, shown)
        assert (shown == "") == (length == 0)


def test_masks_keep_the_length_where_it_helps_recognition() -> None:
    assert len(mask_phone("13812346433")) == 11
    assert len(mask_id_number("450102199001011234")) == 18
    assert len(mask_name("欧阳娜娜")) == 4
