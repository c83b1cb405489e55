"""Test support for quota (its own tests, and other services' saga tests that need vouchers):
a fake catalog, USCCs with good check characters, and :class:`Quota`, the running service
with helpers that certify an enterprise, designate it and give it a voucher."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from stdnum.cn import uscc as uscc_lib

from common.bus.dlq import DeadLetter, db_list, rabbit_list
from common.categories import GENERAL
from common.db import Database
from common.events import ContractSigned, OrderSubmitted
from common.numbers import shanghai_now
from common.orgs import OrgCopy
from common.testing.saga import FakeFile, FakeOrg, SagaHarness
from common.testing.tokens import Caller
from quota.domain.campaigns import BASE_DESIGNATION
from quota.ledger import replay
from quota.models import Movement, QuotaApplication, Voucher
from quota.service.applications import issue
from quota.service.campaigns import types_of

API = "/api/v1"


def make_uscc(n: int | None = None) -> str:
    body = f"91450100MA{(n if n is not None else uuid.uuid4().int) % 10**7:07d}"
    return body + uscc_lib.calc_check_digit(body)


def fake_catalog() -> tuple[FastAPI, dict[str, dict[str, Any]]]:
    """catalog's ``GET /internal/products/{id}`` from a dict."""
    app = FastAPI()
    products: dict[str, dict[str, Any]] = {}

    @app.get("/internal/products/{product_id}")
    async def product(product_id: str) -> dict[str, Any]:
        if product_id not in products:
            raise HTTPException(404)
        return products[product_id]

    return app, products


@dataclass
class Quota:
    """The running quota service and what a test needs around it."""

    h: SagaHarness
    files: dict[str, FakeFile]
    products: dict[str, dict[str, Any]]
    year: int = field(default_factory=lambda: shanghai_now().year)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.h.client("quota")

    @property
    def db(self) -> Database:
        return self.h.db("quota")

    async def certified(
        self, *, uscc: str | None = None, name: str = "广西测试制造有限公司", suspended: bool = False
    ) -> Caller:
        """A certified enterprise (quota's copy, as identity's event leaves it) and its owner's token."""
        caller = self.h.issuer.member(caps=("enterprise",))
        async with self.db.transaction() as s:
            await s.execute(
                pg_insert(OrgCopy).values(
                    org_id=caller.org_id,
                    name=name,
                    uscc=uscc or make_uscc(),
                    kind="enterprise",
                    certified=True,
                    suspended=suspended,
                )
            )
        return caller

    def certified_at_identity(
        self, *, uscc: str | None = None, name: str = "广西测试制造有限公司", suspended: bool = False
    ) -> Caller:
        """An enterprise identity has just certified (its token says so) whose
        ``organization_certified`` has not reached quota yet: quota has no copy of it."""
        caller = self.h.issuer.member(caps=("enterprise",))
        assert caller.org_id is not None
        self.h.peers["identity"].state.orgs[caller.org_id] = FakeOrg(
            caller.org_id,
            name=name,
            uscc=uscc or make_uscc(),
            kind="enterprise",
            certified=True,
            suspended=suspended,
            suspended_reason="违规" if suspended else None,
        )
        return caller

    async def designate(self, uscc: str, designation: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                text("INSERT INTO designations (uscc, designation) VALUES (:u, :d) ON CONFLICT DO NOTHING"),
                {"u": uscc, "d": designation},
            )

    async def voucher(
        self, enterprise_id: str, amount_fen: int, voucher_type: str = GENERAL, **changes: Any
    ) -> Voucher:
        """An approved voucher (as a reviewer's approval issues it)."""
        async with self.db.transaction() as s:
            copy = await s.get(OrgCopy, enterprise_id)
            app = QuotaApplication(
                id=str(uuid.uuid4()),
                enterprise_id=enterprise_id,
                enterprise_name=copy.name if copy else "",
                campaign_year=self.year,
                voucher_type=voucher_type,
                state="approved",
                approved_fen=amount_fen,
            )
            s.add(app)
            await s.flush()
            kind = (await types_of(s, self.year))[voucher_type]
            s.expunge(kind)  # changed for this voucher only, never in the campaign
            for k, v in changes.items():
                setattr(kind, k, v)
            voucher = await issue(s, app, kind, amount_fen, BASE_DESIGNATION)
            await s.refresh(voucher)
        return voucher

    async def row(self, model: type[Any], key: Any) -> Any:
        async with self.db.session() as s:
            return await s.get(model, key)

    async def published(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """What quota wrote to its outbox (the events it published), oldest first."""
        sql = "SELECT body FROM outbox WHERE event_type NOT LIKE 'identity.%'"
        params: dict[str, Any] = {}
        if event_type:
            sql += " AND event_type = :t"
            params["t"] = event_type
        async with self.db.session() as s:
            rows = (await s.execute(text(sql + " ORDER BY created_at, sequence"), params)).scalars().all()
        return [dict(r) for r in rows]

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.db.session() as s:
            return [tuple(r) for r in (await s.execute(text(sql), params)).all()]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.session() as s:
            return (await s.execute(text(sql), params)).scalar_one()

    async def applied(self, event_id: str) -> bool:
        """Quota acknowledged this event as applied (its inbox holds it)."""
        found = await self.scalar(
            "SELECT count(*) FROM inbox WHERE consumer = 'quota' AND event_id = :e", e=event_id
        )
        return bool(found)

    async def dead_letters(self) -> list[DeadLetter]:
        """What quota parked because it could not apply it: its DLQ on RabbitMQ, its dead
        timers in-process (as the DLQ CLI lists them)."""
        if self.h.rabbit is not None:
            return await rabbit_list(self.h.rabbit.url, self.h.rabbit.prefix + "quota")
        return await db_list(self.db)


PROVIDER = "prov-1"


def submitted(enterprise_id: str, *, order_id: str | None = None, **changes: Any) -> OrderSubmitted:
    values: dict[str, Any] = {
        "order_id": order_id or str(uuid.uuid4()),
        "order_no": "ORD" + uuid.uuid4().hex[:15],
        "enterprise_id": enterprise_id,
        "enterprise_name": "广西测试制造有限公司",
        "provider_id": PROVIDER,
        "provider_name": "广西测试服务机构",
        "product_id": "p-76",
        "product_name": "企业诊断服务",
        "category": "企业诊断",
        "voucher_type": "general",
        "use_voucher": True,
        "price_fen": 7600,
        "max_subsidy_fen": 10_000,
        "voucher_id": None,
    }
    values.update(changes)
    return OrderSubmitted(**values)


def signed(order_id: str, enterprise_id: str, subsidy_fen: int, total_fen: int = 7600) -> ContractSigned:
    payable = total_fen - subsidy_fen
    return ContractSigned(
        order_id=order_id,
        contract_id="c-" + order_id[:8],
        enterprise_id=enterprise_id,
        provider_id=PROVIDER,
        total_fen=total_fen,
        subsidy_fen=subsidy_fen,
        payable_fen=payable,
        deposit_fen=0,
        balance_fen=payable,
    )


async def journal_adds_up(q: Quota, voucher_id: str) -> Voucher:
    async with q.db.session() as s:
        voucher = await s.get(Voucher, voucher_id)
        moves = (
            await s.exec(
                select(Movement).where(col(Movement.voucher_id) == voucher_id).order_by(col(Movement.id))
            )
        ).all()
    assert voucher is not None
    b = replay((m.kind, m.amount_fen) for m in moves)
    assert b.holds()
    assert (b.total_fen, b.remaining_fen, b.reserved_fen, b.used_fen, b.settled_fen, b.expired_fen) == (
        voucher.total_fen,
        voucher.remaining_fen,
        voucher.reserved_fen,
        voucher.used_fen,
        voucher.settled_fen,
        voucher.expired_fen,
    )
    return voucher
