"""Rules of identity verification (人脸认证): pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime

# --- identity verification (人脸认证) -------------------------------------------------------------


def verification_token_life(
    *, state: str, decided_at: datetime | None, now: datetime, ttl_seconds: int
) -> int | None:
    """Seconds a passed check's token may still live (its TTL runs from the moment it passed);
    ``None`` when there is no token to give (pending, failed); 0 when it has expired."""
    if state != "passed" or decided_at is None:
        return None
    left = ttl_seconds - (now - decided_at).total_seconds()
    return max(0, int(left))
