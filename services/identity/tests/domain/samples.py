"""Sample data the identity.domain tests of several modules share."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
