"""The journal's arithmetic: how each movement kind changes a voucher's balances (pure).

``replay`` rebuilds the balances from a journal, so a test (or an audit) can check that the
journal adds up to the balances stored on the voucher.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

KINDS = ("issue", "reserve", "commit", "release", "settle", "expire", "reverse")


@dataclass(frozen=True)
class Balances:
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


def apply(b: Balances, kind: str, amount: int) -> Balances:
    match kind:
        case "issue":
            return replace(b, total_fen=b.total_fen + amount, remaining_fen=b.remaining_fen + amount)
        case "reserve":
            return replace(b, remaining_fen=b.remaining_fen - amount, reserved_fen=b.reserved_fen + amount)
        case "commit":
            return replace(b, reserved_fen=b.reserved_fen - amount, used_fen=b.used_fen + amount)
        case "release":
            return replace(b, reserved_fen=b.reserved_fen - amount, remaining_fen=b.remaining_fen + amount)
        case "settle":
            return replace(b, settled_fen=b.settled_fen + amount)
        case "expire":
            return replace(b, remaining_fen=b.remaining_fen - amount, expired_fen=b.expired_fen + amount)
        case "reverse":
            return replace(b, used_fen=b.used_fen - amount, remaining_fen=b.remaining_fen + amount)
    raise ValueError(f"unknown movement kind {kind!r}")


def replay(movements: Iterable[tuple[str, int]]) -> Balances:
    b = Balances()
    for kind, amount in movements:
        b = apply(b, kind, amount)
    return b
