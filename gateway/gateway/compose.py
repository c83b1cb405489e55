"""Reads the gateway composes from several services: portal statistics, the staff audit
log, and the merged OpenAPI document.

The first two are reads between processes like the others, with their contracts
(``common.reads.PortalStats`` and ``AuditFeed``) parsed by ``common.internal.ServiceClients``
over the gateway's own pooled clients. A service that cannot answer, or answers off the
contract (the read's 503 ``dependency_unavailable``), does not fail the composed view: it is
listed in ``stale``, with its last known figures (or null)."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from common import registry
from common.errors import Problem
from common.internal import ServiceClients
from common.openapi import add_problem
from common.reads import AuditFeed, AuditRecord, PortalStats
from gateway import errors

log = structlog.get_logger(__name__)

# Which service fills which portal figure (API.md's /portal/stats): from the registry.
STAT_FIELDS: dict[str, tuple[str, ...]] = registry.stat_fields()
EARLIEST = datetime.min.replace(tzinfo=UTC)  # where an entry without its moment sorts


class Composer:
    def __init__(
        self, clients: dict[str, httpx.AsyncClient], secret: str, *, stats_ttl: float = 15.0
    ) -> None:
        self.clients = clients
        # Asked once: a figure or a log a moment late beats a page waiting on retries.
        self.reads = ServiceClients("gateway", secret, clients=clients, timeout=5, attempts=1)
        self.stats_ttl = stats_ttl
        self._stats: dict[str, PortalStats] = {}
        self._stats_at: dict[str, float] = {}
        self._openapi: dict[str, Any] | None = None

    async def confirm_caller(self, authorization: str) -> None:
        """Ask identity whether the caller's token still stands: the gateway keeps no copy of
        the tokens identity revoked (common.access), identity does. Its refusal (401
        ``token_revoked`` for a deactivated or demoted clerk) is the answer; identity out of
        reach is a 503, never a pass."""
        client = self.clients.get("identity")
        if client is None:
            return  # a gateway in front of no identity: nobody signs in through it
        try:
            response = await client.get("/api/v1/me", headers={"Authorization": authorization}, timeout=5)
        except httpx.HTTPError as exc:
            log.warning("identity_unavailable", error=type(exc).__name__)
            raise errors.service_unavailable() from exc
        if response.status_code == 200:
            return
        try:
            body = response.json()
            problem = errors.passed_on(response.status_code, str(body["code"]), str(body["detail"]))
        except (ValueError, KeyError, TypeError):
            problem = errors.service_unavailable()
        if problem.status == 401:
            problem.headers = {"WWW-Authenticate": "Bearer"}
        elif problem.status >= 500:
            problem = errors.service_unavailable()
        raise problem

    async def portal_stats(self) -> dict[str, Any]:
        """Every figure from its owner; a service that cannot answer keeps its last known
        figures (or null) and is listed in ``stale``."""

        async def one(service: str) -> tuple[str, bool]:
            fresh = time.monotonic() - self._stats_at.get(service, -1e9) < self.stats_ttl
            if fresh:
                return service, True
            if service not in self.clients:
                return service, False
            try:
                figures = await self.reads.read(service, "/internal/stats", PortalStats)
            except Problem as exc:
                log.warning("stats_unavailable", service=service, error=exc.code)
                return service, False
            if figures is None:  # a 404: no figures there
                log.warning("stats_unavailable", service=service, error="not_found")
                return service, False
            self._stats[service] = figures
            self._stats_at[service] = time.monotonic()
            return service, True

        results = await asyncio.gather(*(one(s) for s in STAT_FIELDS))
        body: dict[str, Any] = {}
        stale = []
        for service, ok in results:
            known = self._stats.get(service, PortalStats({}))
            for field in STAT_FIELDS[service]:
                body[field] = known.figure(field)
            if not ok:
                stale.append(service)
        body["stale"] = stale
        return body

    async def audit_log(
        self,
        *,
        service: str | None,
        actor: str | None,
        action: str | None,
        since: datetime | None,
        limit: int,
    ) -> tuple[list[AuditRecord], list[str]]:
        """Every service's decisions (or ``service``'s), newest first, and the services that
        could not answer."""
        targets = [service] if service else list(self.clients)

        async def one(name: str) -> tuple[str, list[AuditRecord] | None]:
            if name not in self.clients:
                return name, None
            try:
                feed = await self.reads.read(
                    name,
                    "/internal/audit-log",
                    AuditFeed,
                    actor=actor,
                    action=action,
                    since=since.isoformat() if since else None,
                    limit=limit,
                )
            except Problem as exc:
                log.warning("audit_log_unavailable", service=name, error=exc.code)
                return name, None
            if feed is None:  # a 404: no feed there
                log.warning("audit_log_unavailable", service=name, error="not_found")
                return name, None
            return name, list(feed.items)

        items: list[AuditRecord] = []
        missing = []
        for name, got in await asyncio.gather(*(one(t) for t in targets)):
            if got is None:
                missing.append(name)
            else:
                items.extend(got)
        # By the moment, not its text: "…00.5Z" is later than "…00Z", and an offset is not UTC.
        items.sort(key=lambda e: e.at or EARLIEST, reverse=True)
        return items, missing

    async def openapi(self, own: dict[str, Any]) -> dict[str, Any]:
        """The gateway's own document plus every service's public paths (cached once all
        services answered)."""
        if self._openapi is not None:
            return self._openapi
        docs: dict[str, dict[str, Any]] = {}
        for name, client in self.clients.items():
            try:
                response = await client.get("/openapi.json", timeout=5)
                response.raise_for_status()
                docs[name] = response.json()
            except (httpx.HTTPError, ValueError):
                continue
        merged = merge_openapi(own, docs)
        if len(docs) == len(self.clients):
            self._openapi = merged
        return merged


SCHEMA_REF = "#/components/schemas/"


def merge_openapi(own: dict[str, Any], docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge the services' documents into the gateway's: only their public paths (below
    /api/v1; ``/internal`` and health paths are left out), tagged with the service name.

    Component schemas share one namespace. A name already taken (by the gateway or an
    earlier service) with an identical definition is shared; one taken with a different
    definition is renamed ``<service>__<Name>`` and every ``$ref`` to it inside that
    service's paths and schemas is rewritten. Why rename rather than keep the first (what
    this did, giving e.g. orders' routes catalog's ``Status`` enum) or fail: the merged
    document must describe each route exactly, and no service has to know the others' names.
    Only the later one is renamed, so names clients already use keep their meaning; the
    prefix is the service name (not a CamelCase join) so it cannot pass for a real model
    name, and ``__`` is valid in component names. The services' documents are not modified."""
    schemas: dict[str, Any] = dict(own.get("components", {}).get("schemas", {}))
    merged = {
        **own,
        "paths": dict(own.get("paths", {})),
        "components": {**own.get("components", {}), "schemas": schemas},
    }
    for name, doc in docs.items():
        theirs: dict[str, Any] = doc.get("components", {}).get("schemas", {})
        renames = _clash_renames(name, theirs, schemas)
        for schema_name, schema in theirs.items():
            target = renames.get(schema_name, schema_name)
            rewritten = _rewrite_refs(schema, renames)
            if target != schema_name and isinstance(rewritten, dict):
                # Generators name a model after its title: the renamed one needs its own.
                rewritten = {**rewritten, "title": target}
            schemas.setdefault(target, rewritten)
        for path, item in doc.get("paths", {}).items():
            if path.startswith("/api/v1/"):
                merged["paths"][path] = {
                    method: through_gateway({"tags": [name], **operation})
                    if isinstance(operation, dict)
                    else operation
                    for method, operation in _rewrite_refs(item, renames).items()
                }
    return merged


def through_gateway(operation: dict[str, Any]) -> dict[str, Any]:
    """What the gateway itself may answer for any routed operation: too many requests from
    one address, the service down or too slow."""
    # A deep copy: the service's document is its app's cached openapi(), not ours to change.
    responses = copy.deepcopy(operation.get("responses", {}))
    for problem in errors.ROUTED:
        add_problem(responses, problem, str(problem.status))
    return {**operation, "responses": responses}


def _clash_renames(service: str, theirs: dict[str, Any], taken: dict[str, Any]) -> dict[str, str]:
    """Which of ``service``'s schemas need a new name to sit beside ``taken``. Repeated to a
    fixed point: renaming one changes the ``$ref``s in the schemas that use it, and an outer
    schema that only differs through a renamed inner one must then be renamed too."""
    renames: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for schema_name, schema in theirs.items():
            if schema_name in renames or schema_name not in taken:
                continue
            if _rewrite_refs(schema, renames) != taken[schema_name]:
                wanted = candidate = f"{service}__{schema_name}"
                n = 1
                while candidate in theirs or candidate in taken or candidate in renames.values():
                    n += 1
                    candidate = f"{wanted}_{n}"
                renames[schema_name] = candidate
                changed = True
    return renames


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """A copy of ``node`` whose schema references (``$ref`` and discriminator mappings)
    point at the renamed schemas."""
    if not renames:
        return node
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _renamed_ref(value, renames)
        elif key == "discriminator" and isinstance(value, dict) and "mapping" in value:
            mapping = {k: _renamed_ref(v, renames) for k, v in value["mapping"].items()}
            out[key] = {**value, "mapping": mapping}
        else:
            out[key] = _rewrite_refs(value, renames)
    return out


def _renamed_ref(ref: str, renames: dict[str, str]) -> str:
    if ref.startswith(SCHEMA_REF) and ref[len(SCHEMA_REF) :] in renames:
        return SCHEMA_REF + renames[ref[len(SCHEMA_REF) :]]
    return ref
