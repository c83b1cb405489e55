"""The journal's arithmetic: how each movement kind changes a voucher's balances (pure).

:data:`MOVES` is the one statement of it: quota's conditional UPDATEs
(``quota.service.vouchers``) are generated from it, and :func:`apply` / :func:`replay`
rebuild the balances from a journal with it, so a test (or ``voucher-invariants``) checks
that the journal adds up to the balances stored on the voucher by the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from enum import StrEnum


@dataclass(frozen=True, kw_only=True)
class Balances:
    """A voucher's six balances: its columns, each journal row's balances-after, and the rows
    ``voucher-invariants`` reads (by keyword, so those rows add their own fields after them)."""

    total_fen: int = 0
    remaining_fen: int = 0
    reserved_fen: int = 0
    used_fen: int = 0
    settled_fen: int = 0
    expired_fen: int = 0

    def holds(self) -> bool:
        """DESIGN.md's invariant: total = remaining + reserved + used + expired, each >= 0, settled <= used."""
        parts = (self.remaining_fen, self.reserved_fen, self.used_fen, self.expired_fen, self.settled_fen)
        return (
            all(p >= 0 for p in parts)
            and self.total_fen == self.remaining_fen + self.reserved_fen + self.used_fen + self.expired_fen
            and self.settled_fen <= self.used_fen
        )


# The voucher's balances (its columns, and each journal row's balances-after).
BALANCES: tuple[str, ...] = tuple(f.name for f in fields(Balances))

# kind -> each balance it changes and the sign of the change (times the movement's amount)
MOVES: dict[str, tuple[tuple[str, int], ...]] = {
    "issue": (("total_fen", 1), ("remaining_fen", 1)),
    "reserve": (("remaining_fen", -1), ("reserved_fen", 1)),
    "commit": (("reserved_fen", -1), ("used_fen", 1)),
    "release": (("reserved_fen", -1), ("remaining_fen", 1)),
    "settle": (("settled_fen", 1),),
    "expire": (("remaining_fen", -1), ("expired_fen", 1)),
    "reverse": (("used_fen", -1), ("remaining_fen", 1)),
}
KINDS = tuple(MOVES)


def apply(b: Balances, kind: str, amount: int) -> Balances:
    if kind not in MOVES:
        raise ValueError(f"unknown movement kind {kind!r}")
    return replace(b, **{name: getattr(b, name) + sign * amount for name, sign in MOVES[kind]})


class ReservationState(StrEnum):
    """quota's decision for one order (``voucher_reservations.state``): every submission leaves
    a row (``none`` without a voucher, ``rejected`` with the reason); with a voucher
    ``reserved -> committed -> settled``, or ``released`` / ``reversed``."""

    DECIDING = "deciding"
    NONE = "none"
    REJECTED = "rejected"
    RESERVED = "reserved"
    COMMITTED = "committed"
    SETTLED = "settled"
    RELEASED = "released"
    REVERSED = "reversed"


R = ReservationState
HELD = frozenset({R.RESERVED})  # on the voucher's reserved
DEDUCTED = frozenset({R.COMMITTED, R.SETTLED})  # on its used
GIVEN_BACK = frozenset({R.NONE, R.REJECTED, R.RELEASED, R.REVERSED})  # on neither


def replay(movements: Iterable[tuple[str, int]]) -> Balances:
    b = Balances()
    for kind, amount in movements:
        b = apply(b, kind, amount)
    return b
