"""Which service answers which public path: a prefix table, longest match wins.

Prefixes are matched on whole path segments below ``/api/v1`` (``/me`` matches ``/me`` and
``/me/password`` but not ``/meetings``). Later services add their prefixes here.
"""

from __future__ import annotations

API_PREFIX = "/api/v1"

ROUTES: dict[str, str] = {
    # identity
    "/captcha": "identity",
    "/sms-codes": "identity",
    "/auth": "identity",
    "/me": "identity",
    "/files": "identity",
    "/admin/organizations": "identity",
    "/admin/staff": "identity",
    "/dev/captcha": "identity",
    "/dev/sms-codes": "identity",
    "/dev/identity-verifications": "identity",
}

# Paths anyone may call without a token (method, prefix). Everything else needs a valid
# access token at the gateway before it is forwarded (and the service checks it again).
PUBLIC: tuple[tuple[str, str], ...] = (
    ("GET", "/captcha"),
    ("POST", "/sms-codes"),
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/password/reset"),
    ("GET", "/portal/stats"),
    ("*", "/dev"),
)


def _segment_prefix(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def route(path: str) -> str | None:
    """The service for a path below /api/v1, or None."""
    best: str | None = None
    best_len = -1
    for prefix, service in ROUTES.items():
        if len(prefix) > best_len and _segment_prefix(path, prefix):
            best, best_len = service, len(prefix)
    return best


def is_public(method: str, path: str) -> bool:
    return any((m == "*" or m == method) and _segment_prefix(path, p) for m, p in PUBLIC)
