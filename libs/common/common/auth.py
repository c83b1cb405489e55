"""Authentication and authorisation shared by every service.

Access tokens are EdDSA JWTs issued by identity (15 minutes); every service verifies them
with identity's public keys, fetched from its JWKS endpoint and cached (refetched when an
unknown ``kid`` shows up), and refuses those identity has revoked since (``common.access``).
``CurrentUser`` gives the caller's user, role, organisation and capabilities;
``require_roles`` checks staff roles (``administrator`` passes every check).
``/internal/`` endpoints take short-lived service tokens (HS256, a secret shared by the
services, never by clients); the gateway never routes them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
import jwt
import structlog
from fastapi import Depends, Request

from common.errors import Problem
from common.errors import access_revoked as access_revoked
from common.errors import capability_required as capability_required
from common.errors import forbidden_role as forbidden_role
from common.errors import service_token_invalid as service_token_invalid
from common.errors import service_token_required as service_token_required
from common.errors import unauthenticated as unauthenticated

log = structlog.get_logger(__name__)

ACCESS_TTL_SECONDS = 15 * 60
STAFF_ROLES = frozenset({"reviewer", "finance", "administrator"})
MEMBER_ROLES = frozenset({"owner", "agent"})
SERVICE_AUDIENCE = "voucher-internal"


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    org_id: str | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    # the account's phone and the name a counterparty addresses it by, as identity issued them
    # (tokens of before they were named have neither): an order's enterprise contact (双方接洽)
    phone: str | None = None
    name: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def has_role(self, *roles: str) -> bool:
        return self.role in roles or (self.role == "administrator" and bool(set(roles) & STAFF_ROLES))

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


class KeySet:
    """Identity's public signing keys, by ``kid``; refreshed from the JWKS URL on demand."""

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        keys: dict[str, Any] | None = None,
        min_refresh_interval: float = 10.0,
    ) -> None:
        self.jwks_url = jwks_url
        self._client = client
        self._keys: dict[str, Any] = dict(keys or {})
        self._last_fetch = 0.0
        self._lock = asyncio.Lock()
        self.min_refresh_interval = min_refresh_interval

    def add(self, kid: str, public_key: Any) -> None:
        self._keys[kid] = public_key

    async def get(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is None and self.jwks_url:
            await self.refresh()
            key = self._keys.get(kid)
        return key

    async def refresh(self, force: bool = False) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._last_fetch < self.min_refresh_interval:
                return
            self._last_fetch = time.monotonic()
            client = self._client or httpx.AsyncClient(timeout=5)
            try:
                response = await client.get(self.jwks_url)  # type: ignore[arg-type]
                response.raise_for_status()
                for jwk in response.json().get("keys", []):
                    try:
                        self._keys[jwk["kid"]] = jwt.PyJWK(jwk).key
                    except (jwt.PyJWKError, KeyError):
                        log.warning("jwks_key_skipped", kid=jwk.get("kid"))
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks_fetch_failed", url=self.jwks_url, error=str(exc))
            finally:
                if self._client is None:
                    await client.aclose()


class Revocations(Protocol):
    """What revokes a token before it expires (``common.access.AccessRevocations``)."""

    def refused(self, claims: Mapping[str, Any]) -> str | None: ...


# A right taken away from the person (not only a session ended): answered 403, not "sign in
# again" (signing in gives the right back only when staff gave it back).
RIGHTS_TAKEN = frozenset({"deactivated", "role_changed", "agent_removed"})


def token_invalid() -> Problem:
    return unauthenticated("登录凭证无效，请重新登录", "token_invalid")


def token_expired() -> Problem:
    return unauthenticated("登录已过期，请重新登录", "token_expired")


def token_revoked() -> Problem:
    return unauthenticated("登录状态已失效，请重新登录", "token_revoked")


class TokenVerifier:
    """Verifies identity's tokens.

    A token that passed every check is remembered for at most ``cache_seconds`` (and never
    past its expiry + leeway), so that a client's next requests skip the signature check:
    the signature and expiry of one token string only change with time, and its exact moment
    is kept. Revocation is not remembered: ``revocations`` (identity took a right away from
    the user, or ended the session) is asked on every call, from the cache or not, so a
    revoked token is refused from the moment this process knows of it: 403 ``access_revoked``
    when a right was taken from the person (deactivated, role changed, agent removed), else 401
    ``token_revoked`` (a session ended: logout, password change or reset).
    Refused tokens are never remembered. ``cache_size=0`` turns the cache off.
    """

    LEEWAY = 5  # seconds of clock skew allowed on exp / iat / nbf

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        cache_size: int = 4096,
        cache_seconds: float = 60.0,
        revocations: Revocations | None = None,
    ) -> None:
        self.keys = keys
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._verified: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    async def decode(self, token: str, *, typ: str = "access") -> dict[str, Any]:
        """Verify an identity-issued token of the given ``typ``; raise a 401 problem."""
        cached = self._verified.get((token, typ))
        if cached is not None:
            if time.time() < cached[0]:
                claims = dict(cached[1])
                self._check_revoked(claims)
                return claims
            self._verified.pop((token, typ), None)
        claims = await self._verify(token, typ)
        self._check_revoked(claims)
        self._remember(token, typ, claims)
        return claims

    def _check_revoked(self, claims: dict[str, Any]) -> None:
        if self.revocations is None:
            return
        change = self.revocations.refused(claims)
        if change in RIGHTS_TAKEN:
            raise access_revoked()
        if change:
            raise token_revoked()

    def _remember(self, token: str, typ: str, claims: dict[str, Any]) -> None:
        if self.cache_size <= 0:
            return
        now = time.time()
        # jwt.decode refuses a token once now >= exp + leeway: stop answering from memory then.
        until = min(float(claims["exp"]) + self.LEEWAY, now + self.cache_seconds)
        if until <= now:
            return
        if len(self._verified) >= self.cache_size:
            for key in [k for k, (t, _) in self._verified.items() if t <= now]:
                del self._verified[key]
            while len(self._verified) >= self.cache_size:  # the oldest entries go first
                del self._verified[next(iter(self._verified))]
        self._verified[(token, typ)] = (until, dict(claims))

    async def _verify(self, token: str, typ: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise token_invalid() from exc
        if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
            raise token_invalid()
        key = await self.keys.get(header["kid"])
        if key is None:
            raise token_invalid()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "typ"]},
                leeway=self.LEEWAY,
            )
        except jwt.ExpiredSignatureError as exc:
            raise token_expired() from exc
        except jwt.InvalidTokenError as exc:
            raise token_invalid() from exc
        if claims.get("typ") != typ:
            raise token_invalid()
        return claims

    async def principal(self, token: str) -> Principal:
        claims = await self.decode(token)
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    return Principal(
        user_id=str(claims["sub"]),
        role=str(claims.get("role", "")),
        org_id=claims.get("org"),
        capabilities=frozenset(claims.get("caps") or ()),
        session_id=claims.get("sid"),
        phone=claims.get("phone"),
        name=claims.get("name"),
    )


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_user(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise unauthenticated()
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.principal(token)
    request.state.principal = principal
    return principal


async def optional_user(request: Request) -> Principal | None:
    if bearer_token(request) is None:
        return None
    return await current_user(request)


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the caller has one of ``roles`` (administrator passes any staff check)."""

    async def check(user: CurrentUser) -> Principal:
        if not user.has_role(*roles):
            raise forbidden_role()
        return user

    return check


def require_capability(capability: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(user: CurrentUser) -> Principal:
        if user.role not in MEMBER_ROLES or not user.can(capability):
            raise capability_required(capability)
        return user

    check.capability = capability  # type: ignore[attr-defined]  # read by common.openapi
    return check


StaffUser = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
AdminUser = Annotated[Principal, Depends(require_roles("administrator"))]
ReviewerUser = Annotated[Principal, Depends(require_roles("reviewer"))]  # 审核
FinanceUser = Annotated[Principal, Depends(require_roles("finance"))]  # 财务
# a member of a certified enterprise / service provider (the token's capability)
EnterpriseUser = Annotated[Principal, Depends(require_capability("enterprise"))]
ProviderUser = Annotated[Principal, Depends(require_capability("provider"))]


# --- service tokens ----------------------------------------------------------------------------


def issue_service_token(secret: str, service: str, ttl: int = 300) -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "sub": f"service:{service}",
            "aud": SERVICE_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
        },
        secret,
        algorithm="HS256",
    )


def verify_service_token(secret: str, token: str) -> str:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=SERVICE_AUDIENCE, leeway=5)
    except jwt.InvalidTokenError as exc:
        raise service_token_invalid() from exc
    sub = str(claims.get("sub", ""))
    if not sub.startswith("service:"):
        raise service_token_invalid()
    return sub.removeprefix("service:")


async def internal_caller(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise service_token_required()
    return verify_service_token(request.app.state.settings.service_token_secret, token)


InternalCaller = Annotated[str, Depends(internal_caller)]


class ServiceTokenAuth(httpx.Auth):
    """httpx auth for calls to other services' ``/internal/`` endpoints."""

    def __init__(self, secret: str, service: str) -> None:
        self.secret = secret
        self.service = service
        self._token = ""
        self._expires = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if time.time() > self._expires - 30:
            self._token = issue_service_token(self.secret, self.service)
            self._expires = time.time() + 300
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
