"""payments's tables. Table names are unique across the platform (all-in-one mode holds every
service's models in one process)."""

from __future__ import annotations
