"""The rest of the journey at a steady rate (issue 16): after the saga has decided the orders,
each step a person takes on them, one phase per step, through the gateway.

For N orders waiting for acceptance, every step is sent at a fixed rate (an open loop, as
``saga.py``'s phase (b)): 接单, 起草合同, 提交合同, 同意合同, then for each party the
人脸认证 (start, the development pass, the token read back) and 签署, then 上传汇款凭证,
登记对公转账 (the deposit) and 到账核实. A phase ends when what the step sets off elsewhere is
done (the contract drafted after 接单, the payment plan after both signatures, the order in
待服务 after 到账核实; read from the services' databases, so the waiting costs the services
nothing), so each phase's CPU is the whole platform's cost of that step. Printed
per step: the call's p50 / p99 through the gateway, the CPU milliseconds per call of every
process (psutil, PostgreSQL's backends included; what the idle platform spends in the same
time, measured first, taken off) and the process that spent most; the slowest step is named.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from e2e.journey import PDF, Journey, Org

TOTAL_FEN = 7600
DEPOSIT_FEN = 1000
TERMS = "甲方委托乙方提供专利分级评价服务，乙方出具评价报告。服务期限为合同签订后30日内。"


@dataclass
class Deal:
    """One order on its way: who buys, and what each step leaves for the next."""

    order_id: str
    enterprise: Org
    contract_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # party -> 人脸认证 token
    receipt_id: str = ""
    remittance_id: str = ""


@dataclass
class StepResult:
    name: str
    latencies_ms: list[float]
    cpu_ms: dict[str, float]  # per call, per process

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_ms.values())


class JourneySteps:
    def __init__(
        self,
        journey: Journey,
        provider: Org,
        enterprises: list[Org],
        databases: dict[str, str],
        cpu_of: Callable[[], dict[str, float]],
        per_call: Callable[[dict[str, float], dict[str, float], int], dict[str, float]],
    ) -> None:
        self.j = journey
        self.provider = provider
        self.by_org = {o.org_id: o for o in enterprises}
        self.db = databases  # service -> plain PostgreSQL URL
        self.cpu_of = cpu_of
        self.per_call = per_call
        self.idle_per_s: dict[str, float] = {}

    async def deals(self, n: int) -> list[Deal]:
        rows = await self._fetch(
            "orders",
            "SELECT id, enterprise_id FROM orders WHERE status = 'awaiting_acceptance' "
            "AND provider_id = $1 ORDER BY created_at LIMIT $2",
            self.provider.org_id,
            n,
        )
        if len(rows) < n:
            raise RuntimeError(f"only {len(rows)} orders wait for acceptance, {n} wanted")
        return [Deal(r["id"], self.by_org[r["enterprise_id"]]) for r in rows]

    async def idle(self, seconds: float = 3.0) -> None:
        """What the platform spends doing nothing (its pollers), per second and process: taken
        off each phase's CPU, so a step is charged only for itself."""
        before = self.cpu_of()
        await asyncio.sleep(seconds)
        self.idle_per_s = {k: v / 1000 for k, v in self.per_call(before, self.cpu_of(), 1).items()}
        for k in self.idle_per_s:
            self.idle_per_s[k] /= seconds

    async def run(self, n: int, rate: float) -> list[StepResult]:
        deals = await self.deals(n)
        await self.idle()
        await self.j.sealed(self.provider, *{d.enterprise.org_id: d.enterprise for d in deals}.values())
        j, provider = self.j, self.provider

        async def accept(d: Deal) -> httpx.Response:
            return await j.post(f"/orders/{d.order_id}/accept", provider)

        async def drafted(ds: list[Deal]) -> list[Deal]:
            rows = await self._fetch(
                "contracts",
                "SELECT order_id, id FROM contracts WHERE order_id = ANY($1)",
                [d.order_id for d in ds],
            )
            made = {r["order_id"]: r["id"] for r in rows}
            for d in ds:
                d.contract_id = made.get(d.order_id, "")
            return [d for d in ds if not d.contract_id]

        async def draft(d: Deal) -> httpx.Response:
            body = {"total_fen": TOTAL_FEN, "deposit_fen": DEPOSIT_FEN, "terms": TERMS}
            return await j.put(f"/contracts/{d.contract_id}", provider, body)

        async def submit(d: Deal) -> httpx.Response:
            return await j.post(f"/contracts/{d.contract_id}/submit", provider)

        async def agree(d: Deal) -> httpx.Response:
            return await j.post(f"/contracts/{d.contract_id}/agree", d.enterprise)

        def verify(party: str) -> Callable[[Deal], Awaitable[httpx.Response]]:
            async def step(d: Deal) -> httpx.Response:
                who = d.enterprise if party == "enterprise" else provider
                body = {"purpose": "sign_contract", "object_id": d.contract_id}
                started = await j.post("/me/identity-verifications", who, body)
                if started.status_code != 201:
                    return started
                vid = started.json()["verification_id"]
                passed = await j.client.post(f"/api/v1/dev/identity-verifications/{vid}/pass")
                if passed.status_code != 200:
                    return passed
                got = await j.get(f"/me/identity-verifications/{vid}", who)
                if got.status_code == 200:
                    d.tokens[party] = got.json()["token"]
                return got

            return step

        def sign(party: str) -> Callable[[Deal], Awaitable[httpx.Response]]:
            async def step(d: Deal) -> httpx.Response:
                who = d.enterprise if party == "enterprise" else provider
                body = {"verification_token": d.tokens[party]}
                return await j.post(f"/contracts/{d.contract_id}/sign", who, body)

            return step

        async def planned(ds: list[Deal]) -> list[Deal]:
            sql = "SELECT order_id FROM payment_plans WHERE order_id = ANY($1)"
            done = {r["order_id"] for r in await self._fetch("payments", sql, [d.order_id for d in ds])}
            return [d for d in ds if d.order_id not in done]

        async def upload(d: Deal) -> httpx.Response:
            r = await j.client.post(
                "/api/v1/files",
                files={"file": ("汇款凭证.pdf", PDF, "application/pdf")},
                headers=d.enterprise.headers,
            )
            if r.status_code == 201:
                d.receipt_id = r.json()["file_id"]
            return r

        async def remit(d: Deal) -> httpx.Response:
            body = {
                "amount_fen": DEPOSIT_FEN,
                "bank_reference": "HX" + uuid.uuid4().hex[:12].upper(),
                "payer_account": "6228480000000000001",
                "receipt_file_ids": [d.receipt_id],
            }
            r = await j.post(
                f"/orders/{d.order_id}/remittances",
                d.enterprise,
                body,
                **{"Idempotency-Key": str(uuid.uuid4())},
            )
            if r.status_code == 201:
                d.remittance_id = r.json()["id"]
            return r

        async def confirm(d: Deal) -> httpx.Response:
            return await j.post(f"/remittances/{d.remittance_id}/confirm", provider)

        async def serving(ds: list[Deal]) -> list[Deal]:
            sql = "SELECT id FROM orders WHERE id = ANY($1) AND status = 'awaiting_service'"
            done = {r["id"] for r in await self._fetch("orders", sql, [d.order_id for d in ds])}
            return [d for d in ds if d.order_id not in done]

        Settled = Callable[[list[Deal]], Awaitable[list[Deal]]]  # the deals still waiting
        steps: list[tuple[str, Callable[[Deal], Awaitable[httpx.Response]], Settled | None]] = [
            ("接单 (+ 合同草稿)", accept, drafted),
            ("起草合同", draft, None),
            ("提交合同", submit, None),
            ("同意合同 (合同文本)", agree, None),
            ("人脸认证 企业 (3 calls)", verify("enterprise"), None),
            ("签署 企业", sign("enterprise"), None),
            ("人脸认证 机构 (3 calls)", verify("provider"), None),
            ("签署 机构 (+ 支付计划)", sign("provider"), planned),
            ("上传汇款凭证", upload, None),
            ("登记对公转账", remit, None),
            ("到账核实 (+ 待服务)", confirm, serving),
        ]
        results = []
        for name, call, settled in steps:
            results.append(await self._phase(name, deals, rate, call, settled))
        return results

    async def _phase(
        self,
        name: str,
        deals: list[Deal],
        rate: float,
        call: Callable[[Deal], Awaitable[httpx.Response]],
        settled: Callable[[list[Deal]], Awaitable[list[Deal]]] | None,
    ) -> StepResult:
        before = self.cpu_of()
        began = time.monotonic()
        latencies: list[float] = []
        failed: list[str] = []

        async def one(d: Deal) -> None:
            t0 = time.perf_counter()
            r = await call(d)
            if r.status_code in (200, 201):
                latencies.append(1000 * (time.perf_counter() - t0))
            else:
                failed.append(f"{r.status_code} {r.text[:200]}")

        tasks = []
        start = time.perf_counter()
        for i, d in enumerate(deals):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(d)))
        await asyncio.gather(*tasks)
        if failed:
            raise RuntimeError(f"{name}: {len(failed)} of {len(deals)} failed, e.g. {failed[0]}")
        if settled is not None:
            deadline = time.monotonic() + 120
            while waiting := await settled(deals):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {len(waiting)} orders not settled after 120 s")
                await asyncio.sleep(0.2)
        else:
            await asyncio.sleep(1.0)  # the events the step published, applied
        spent = self.per_call(before, self.cpu_of(), len(deals))
        idle = (time.monotonic() - began) * 1000 / len(deals)
        cpu = {k: max(0.0, v - self.idle_per_s.get(k, 0.0) * idle) for k, v in spent.items()}
        return StepResult(name, latencies, cpu)

    async def _fetch(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db[service])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()
