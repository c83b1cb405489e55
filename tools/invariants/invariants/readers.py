"""One thin reader per service database: plain SQL over asyncpg, in a READ ONLY transaction
(repeatable read, so each database is read as of one moment). Table names are taken
from the services' models (``services/<name>/<name>/models.py``); ``SELECT *`` and
:func:`invariants.rows.row` keep a reader working when a service adds a column.

A database that does not exist yet, or a table its service has not created yet, is reported
as skipped, never as a failure: the checks that need it do not run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from common.audit import AuditEntry
from common.db import asyncpg_connect_args
from contracts import models as contracts_models
from invariants import rows as r
from orders import models as orders_models
from payments import models as payments_models
from quota import models as quota_models


def _table(model: type[Any]) -> str:
    return str(model.__tablename__)


# service -> [(table, Snapshot attribute, row type, ORDER BY)]; the tables are the models'.
TABLES: dict[str, list[tuple[str, str, type[Any], str]]] = {
    "quota": [
        (_table(quota_models.Voucher), "vouchers", r.Voucher, "id"),
        (_table(quota_models.Movement), "movements", r.Movement, "voucher_id, id"),
        (_table(quota_models.Reservation), "reservations", r.Reservation, "order_id"),
        (_table(quota_models.ProviderCap), "caps", r.ProviderCap, "provider_id, year"),
        (_table(quota_models.Campaign), "campaigns", r.Campaign, "year"),
        (_table(quota_models.QuotaApplication), "applications", r.Application, "id"),
    ],
    "orders": [(_table(orders_models.Order), "orders", r.Order, "id")],
    "contracts": [(_table(contracts_models.Contract), "contracts", r.Contract, "id")],
    "payments": [
        (_table(payments_models.PaymentPlan), "plans", r.Plan, "order_id"),
        (_table(payments_models.Remittance), "remittances", r.Remittance, "id"),
        (_table(payments_models.SettlementClaim), "claims", r.Claim, "id"),
        (_table(payments_models.Refund), "refunds", r.Refund, "id"),
    ],
}
# Every service keeps the money conflicts it could not apply in its audit log (common.audit).
CONFLICTS = (_table(AuditEntry), "conflicts", r.Conflict, "id")
for _tables in TABLES.values():
    _tables.append(CONFLICTS)
WHERE = {CONFLICTS[0]: "action LIKE 'conflict.%'"}
SERVICES = tuple(TABLES)


class Unreachable(Exception):
    """The PostgreSQL server could not be reached at all (not: a database is missing)."""


@dataclass
class ReadResult:
    service: str
    ok: bool
    reason: str = ""  # why skipped
    counts: dict[str, int] = field(default_factory=dict)


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key, value in out.items():
        if key == "tiers" and isinstance(value, str):
            out[key] = json.loads(value)  # asyncpg returns JSONB as text
    return out


@retry(  # a server whose connection slots are all taken frees one soon: wait, do not fail
    retry=retry_if_exception_type(asyncpg.TooManyConnectionsError),
    wait=wait_exponential(multiplier=0.2, max=2),
    stop=stop_after_delay(30),
    reraise=True,
)
async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        **asyncpg_connect_args(url),
        server_settings={"default_transaction_read_only": "on", "application_name": "voucher-invariants"},
        timeout=10,
    )


async def read_service(url: str, service: str, snapshot: r.Snapshot) -> ReadResult:
    try:
        conn = await _connect(url)
    except asyncpg.InvalidCatalogNameError:
        return ReadResult(service, False, "its database does not exist")
    except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as exc:
        raise Unreachable(f"{service}: {exc}") from exc
    result = ReadResult(service, True)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for table, attr, cls, order in TABLES[service]:
                exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
                if not exists:
                    return ReadResult(service, False, f"table {table} does not exist yet")
                where = f" WHERE {WHERE[table]}" if table in WHERE else ""
                records = await conn.fetch(f"SELECT * FROM {table}{where} ORDER BY {order}")
                plain = [_plain(rec) | {"service": service} for rec in records]
                getattr(snapshot, attr).extend(r.rows(cls, plain))
                result.counts[table] = len(records)
    finally:
        await conn.close()
    snapshot.available.add(service)
    return result


async def read_all(
    urls: Mapping[str, str], snapshot: r.Snapshot | None = None
) -> tuple[r.Snapshot, list[ReadResult]]:
    """Every service database of ``urls`` (service -> URL) into one snapshot.

    A service skipped part-way leaves no rows behind: its rows are read into a scratch
    snapshot first and only kept when every table was read."""
    snapshot = snapshot or r.Snapshot()
    results: list[ReadResult] = []
    for service in SERVICES:
        if service not in urls:
            results.append(ReadResult(service, False, "no database URL given"))
            continue
        scratch = r.Snapshot()
        result = await read_service(urls[service], service, scratch)
        results.append(result)
        if result.ok:
            for _table, attr, _cls, _order in TABLES[service]:
                getattr(snapshot, attr).extend(getattr(scratch, attr))
            snapshot.available.add(service)
    return snapshot, results
