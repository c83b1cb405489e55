"""Which service answers which public path: derived from the service registry
(``common.registry``), the most specific pattern wins.

Patterns are matched on whole path segments below ``/api/v1`` (``/me`` matches ``/me`` and
``/me/password`` but not ``/meetings``; ``*`` is one segment, so ``/orders/*/contract`` goes
to contracts while ``/orders/...`` goes to orders).
"""

from __future__ import annotations

from common import registry

API_PREFIX = registry.API_PREFIX

# (pattern, service), most specific first.
ROUTES: list[tuple[str, str]] = registry.route_table()

# Paths anyone may call without a token (method, pattern). Everything else needs a valid
# access token at the gateway before it is forwarded (and the service checks it again).
PUBLIC: tuple[tuple[str, str], ...] = (*registry.public_paths(), ("GET", "/portal/stats"))


def route(path: str) -> str | None:
    """The service for a path below /api/v1, or None (the gateway's own routes)."""
    for pattern, service in ROUTES:
        if registry.matches(pattern, path):
            return service
    return None


def is_public(method: str, path: str) -> bool:
    return any((m == "*" or m == method) and registry.matches(p, path) for m, p in PUBLIC)


# Public routes that cost their service (and a vendor) much for what they take: each has a
# tighter limit per client address of its own, on top of the general one. (name, method,
# pattern); the name is the setting's (GATEWAY_RATE_LIMIT_<NAME>_PER_IP) and the counter's.
TIGHT: tuple[tuple[str, str, str], ...] = (
    # The phone's return from the face vendor's page: identity asks the vendor at each call.
    ("face_return", "GET", "/identity-verifications/*/return"),
    # Anyone's PDF (up to 10 MB) checked with pyHanko.
    ("contract_verify", "POST", "/contracts/verify"),
)


def tight_limit(method: str, path: str) -> str | None:
    """The name of the tighter per-address limit a public route has, or None."""
    for name, m, pattern in TIGHT:
        if m == method and registry.matches(pattern, path):
            return name
    return None
