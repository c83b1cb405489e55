"""Sample data the domain tests of several modules share."""

from __future__ import annotations

from quota.domain import campaigns

TIERS = list(campaigns.DEFAULT_TIERS)
