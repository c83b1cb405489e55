"""Providers' caps on general subsidies (a row per provider and year)."""

from __future__ import annotations


def room(cap_fen: int, reserved_fen: int, used_fen: int) -> int:
    """What is left of a provider's cap: what it may still reserve (negative once lowered below
    its use, which only the subsidies already held exceed)."""
    return cap_fen - in_use(reserved_fen, used_fen)


def in_use(reserved_fen: int, used_fen: int) -> int:
    """What the cap holds: the subsidies reserved and used; a cap is never set below it."""
    return reserved_fen + used_fen
