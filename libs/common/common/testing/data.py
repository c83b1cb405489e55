"""Valid (and deliberately invalid) Chinese identifiers for tests, random each call."""

from __future__ import annotations

import random

from stdnum.cn import ric, uscc

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def valid_uscc() -> str:
    """A USCC (GB 32100) with a correct check digit: 91 (enterprise) + 450100 (Nanning) + ..."""
    body = "91450100" + "".join(random.choice(_USCC_ALPHABET) for _ in range(9))
    return body + uscc.calc_check_digit(body)


def invalid_uscc() -> str:
    """Right shape, wrong check digit."""
    good = valid_uscc()
    wrong = next(c for c in "0123456789" if c != good[-1])
    return good[:-1] + wrong


def valid_resident_id(birth: str = "19850505") -> str:
    body = "450102" + birth + f"{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum reads 18 characters, ignoring the last


# What a JSON client may send instead of a whole number of fen or a true/false flag; every one
# must be a 422 naming the field, with nothing recorded: true is not 1 fen, "500" is not an
# amount, 1000.0 is a float, "yes" is not a flag (nor 1, nor "true").
LOOSE_AMOUNTS = (True, "500", 1000.0, "yes")
LOOSE_FLAGS = ("yes", "true", 1, 1000.0, "500")
