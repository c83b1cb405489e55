"""The steps the end-to-end journeys are made of, each as a person does it through the
gateway (the development endpoints stand in for the captcha, the SMS codes and the face
checks, as API.md's dev section intends), and ``voucher-invariants`` run as a subprocess on
the platform's databases.

``Journey`` keeps the platform's staff (the administrator of ``conftest``, a reviewer and a
finance clerk it creates) and makes enterprises, providers, products and orders.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx

from common import registry
from common.testing.api_client import ApiDriver, Session, random_phone
from common.testing.data import valid_resident_id, valid_uscc
from common.testing.platform import platform_slot
from common.testing.plugin import databases
from common.testing.processes import free_port, running
from common.testing.rabbit import RabbitNamespace

from .conftest import ADMIN_PASSWORD, ADMIN_PHONE, Platform, platform_env, start_all

T = TypeVar("T")
STAFF_PASSWORD = "Staff-e2e-2024x"
BASE = "一般规模以上制造业企业"
# The manual's product: 76元 (market 80元), max subsidy 138元 -> 券后价 38元.
PRODUCT = {
    "name": "专利分级评价",
    "category": "数字化转型",
    "description": "对企业专利进行分级评价，出具评价报告",
    "deliverables": "专利分级评价报告一份",
    "acceptance_criteria": "企业确认报告并签署验收单",
    "market_price_fen": 8000,
    "platform_price_fen": 7600,
    "max_subsidy_fen": 13800,
}
# A minimal, well-formed PDF (identity checks files by their content).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@asynccontextmanager
async def platform_for_module(
    postgres_server: str, amqp_url: str, tmp: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Platform]:
    """``conftest.platform`` once for a whole module: the journeys of a module share one
    platform (starting eight processes is most of a journey's time), each with its own
    organisations, and the invariants must hold over everything they leave behind."""
    tag = uuid.uuid4().hex[:10]
    rabbit = RabbitNamespace(url=amqp_url, exchange=f"test.{tag}.events", prefix=f"test.{tag}.")
    rabbit.services.extend(registry.NAMES)
    ports: dict[str, int] = {}
    for name in (*registry.NAMES, "gateway"):
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    async with platform_slot(), databases(postgres_server) as fresh_db:
        try:
            env = {**await platform_env(fresh_db, rabbit, tmp / "files", ports), **(extra_env or {})}
            with running(env, tmp / "logs") as processes:
                start_all(processes, ports, timeout=300)
                yield Platform(
                    processes.urls["gateway"],
                    processes.urls["identity"],
                    rabbit,
                    processes,
                    dict(processes.urls),
                )
        finally:
            try:
                await rabbit.cleanup()
            except Exception as exc:  # noqa: BLE001 - never hide why the journey itself failed
                print(f"[e2e] RabbitMQ clean-up failed: {exc!r}", file=sys.stderr)


@dataclass
class Org:
    session: Session
    org_id: str
    name: str
    uscc: str

    @property
    def headers(self) -> dict[str, str]:
        return self.session.headers


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str, within: float = 20
) -> T:
    """Poll ``probe`` until ``ok`` holds (events travel between processes), else fail with
    the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if ok(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within}s; last {value!r}")
        await asyncio.sleep(0.2)


def expect(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    return r.json() if r.content and r.headers.get("content-type", "").endswith("json") else {}


class Journey:
    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        self.platform = platform
        self.client = client
        self.api = ApiDriver(client)
        self.admin: Session
        self.reviewer: Session
        self.finance: Session
        self.seals: set[str] = set()

    @classmethod
    async def start(cls, platform: Platform, client: httpx.AsyncClient) -> Journey:
        j = cls(platform, client)
        j.admin = await j.api.login(ADMIN_PHONE, ADMIN_PASSWORD)
        j.reviewer = await j.staff("reviewer", "审核员甲")
        j.finance = await j.staff("finance", "财务员乙")
        await j.campaign()
        return j

    # --- plumbing -----------------------------------------------------------------------------

    async def get(self, path: str, who: Session | Org | None = None, **params: Any) -> httpx.Response:
        return await self.client.get(
            f"/api/v1{path}", headers=who.headers if who else None, params=params or None
        )

    async def post(
        self, path: str, who: Session | Org, body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        return await self.client.post(f"/api/v1{path}", json=body or {}, headers={**who.headers, **headers})

    async def put(self, path: str, who: Session | Org, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"/api/v1{path}", json=body, headers=who.headers)

    async def staff(self, role: str, name: str) -> Session:
        phone = random_phone()
        expect(
            await self.post(
                "/admin/staff",
                self.admin,
                {"phone": phone, "name": name, "role": role, "password": STAFF_PASSWORD},
            ),
            201,
        )
        return await self.api.login(phone, STAFF_PASSWORD)

    async def campaign(self) -> None:
        """The current year's campaign with the 2024 rules, windows over the whole year (as
        the demo data and the tests use)."""
        from quota.domain.campaigns import campaign_spec  # the campaign the quota service itself seeds

        if (await self.get("/campaigns/current")).status_code == 200:
            return
        year = date.today().year
        spec = campaign_spec(year)
        for t in spec["types"]:
            t["valid_from"], t["valid_to"] = str(t["valid_from"]), str(t["valid_to"])
        r = await self.put(f"/admin/campaigns/{year}", self.admin, spec)
        assert r.status_code in (200, 201), r.text

    async def refreshed(self, org: Org, capability: str) -> Org:
        """Wait until identity gives the organisation ``capability``, then sign in afresh so
        the token carries it."""
        await eventually(
            lambda: self.get("/me", org),
            lambda r: capability in r.json()["organization"]["capabilities"],
            f"{org.name} gets {capability}",
        )
        org.session = await self.api.refresh(org.session)
        return org

    # --- organisations ------------------------------------------------------------------------

    async def organisation(self, name: str) -> Org:
        """注册 -> 企业信息认证: a certified organisation (capability ``enterprise``)."""
        return await self.refreshed(await self.certified_now(name), "enterprise")

    async def certified_now(self, name: str, uscc: str | None = None) -> Org:
        """注册 -> 企业信息认证 and nothing more: the organisation with the fresh token the
        certification answers with, the moment identity certified it (the other services
        may not have heard of it yet)."""
        phone = random_phone()
        session = await self.api.register(phone, name)
        code = await self.api.sms_code(phone, "certify")
        uscc = uscc or valid_uscc()
        body = {
            "role": "enterprise",
            "name": name,
            "uscc": uscc,
            "legal_rep_name": "王五",
            "legal_rep_id_type": "resident_id",
            "legal_rep_id_number": valid_resident_id(),
            "sms_code": code,
            "agreed": True,
        }
        certified = expect(await self.post("/me/organization/certification", session, body))
        session.access_token = certified["access_token"]
        return Org(session, session.body["organization"]["id"], name, uscc)

    async def file(self, who: Org, name: str = "证明材料.pdf") -> str:
        r = await self.client.post(
            "/api/v1/files", files={"file": (name, io.BytesIO(PDF), "application/pdf")}, headers=who.headers
        )
        return str(expect(r, 201)["file_id"])

    async def enterprise_with_voucher(
        self, name: str = "广西柳州某某汽车零部件有限公司"
    ) -> tuple[Org, dict[str, Any]]:
        """A certified enterprise on the base list, its general voucher applied for and
        approved (5万): the 去使用 entry of GET /me/vouchers."""
        org = await self.organisation(name)
        await self.designate(org.uscc, BASE)
        applied = expect(await self.post("/me/quota-applications", org, {"voucher_type": "general"}), 201)
        mine = await self.general_voucher(org)
        assert mine["state"] == "pending_review", mine
        expect(await self.post(f"/admin/quota-applications/{applied['id']}/approve", self.reviewer, {}))
        return org, await self.general_voucher(org)

    async def designate(self, uscc: str, designation: str) -> None:
        """The reviewer imports a designation list of one row (CSV)."""
        csv = f"uscc,designation\n{uscc},{designation}\n".encode()
        report = expect(
            await self.client.post(
                "/api/v1/admin/designations/import",
                files={"file": ("名单.csv", io.BytesIO(csv), "text/csv")},
                headers=self.reviewer.headers,
            )
        )
        assert report["accepted"] == 1, report

    async def general_voucher(self, org: Org) -> dict[str, Any]:
        items = expect(await self.get("/me/vouchers", org))["items"]
        return next(i for i in items if i["voucher_type"] == "general")

    async def provider(self, name: str = "广西测试科技服务有限公司") -> Org:
        """申请入驻平台 -> reviewed -> the provider capability, and its receiving account."""
        org = await self.organisation(name)
        body = {
            "name": name,
            "profile": "专注制造业数字化转型服务",
            "categories": ["数字化转型", "企业诊断"],
            "contact_name": "李四",
            "contact_phone": "13812346433",
            "address": "南宁市青秀区民族大道 100 号",
            "working_hours": "周一至周五 08:00:00-18:00:00",
            "proof_file_ids": [await self.file(org, "营业执照.pdf")],
        }
        account = {
            "account_name": name,
            "bank_name": "中国工商银行",
            "bank_region": "广西壮族自治区南宁市",
            "branch_name": "中国工商银行南宁民族支行",
            "account_number": "6222020000" + str(uuid.uuid4().int)[:9],
        }
        # 支付认证 first: an organisation without a receiving account is not approved
        expect(await self.put("/me/organization/bank-account", org, account))
        applied = expect(await self.post("/me/provider-application", org, body), 201)
        expect(await self.post(f"/admin/provider-applications/{applied['id']}/approve", self.reviewer, {}))
        return await self.refreshed(org, "provider")

    async def product(self, provider: Org, **overrides: Any) -> dict[str, Any]:
        """A product made, submitted, approved by the reviewer; returned once listed."""
        made = expect(await self.post("/me/products", provider, {**PRODUCT, **overrides}), 201)
        expect(await self.post(f"/me/products/{made['id']}/submit", provider))
        expect(await self.post(f"/admin/products/{made['id']}/approve", self.reviewer, {}))
        return made

    # --- orders and contracts -------------------------------------------------------------------

    async def order(self, enterprise: Org, product_id: str, *, use_voucher: bool = True) -> dict[str, Any]:
        key = str(uuid.uuid4())
        made = expect(
            await self.post(
                "/orders",
                enterprise,
                {"product_id": product_id, "use_voucher": use_voucher},
                **{"Idempotency-Key": key},
            ),
            201,
        )
        return await self.order_in(enterprise, made["id"], lambda o: o["status"] != "pending_voucher")

    async def order_in(
        self,
        who: Org | Session,
        order_id: str,
        ok: Callable[[dict[str, Any]], bool],
        what: str = "",
        within: float = 20,
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any]:
            return expect(await self.get(f"/orders/{order_id}", who))

        return await eventually(probe, ok, what or f"order {order_id}", within)

    async def status(
        self, who: Org | Session, order_id: str, status: str, within: float = 20
    ) -> dict[str, Any]:
        return await self.order_in(
            who, order_id, lambda o: o["status"] == status, f"order {order_id} {status}", within
        )

    async def contract(
        self, who: Org, order_id: str, ok: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        async def probe() -> httpx.Response:
            return await self.get(f"/orders/{order_id}/contract", who)

        r = await eventually(
            probe, lambda r: r.status_code == 200 and (ok is None or ok(r.json())), f"contract of {order_id}"
        )
        return dict(r.json())

    async def verification(self, who: Org, purpose: str, object_id: str | None = None) -> str:
        """人脸认证: started, passed by the simulated check, its token read back."""
        body: dict[str, Any] = {"purpose": purpose}
        if object_id:
            body["object_id"] = object_id
        started = expect(await self.post("/me/identity-verifications", who, body), 201)
        vid = started["verification_id"]
        expect(await self.client.post(f"/api/v1/dev/identity-verifications/{vid}/pass"))
        got = expect(await self.get(f"/me/identity-verifications/{vid}", who))
        assert got["state"] == "passed" and got.get("token"), got
        return str(got["token"])

    async def seal(self, who: Org) -> None:
        token = await self.verification(who, "seal")
        expect(await self.post("/me/seal", who, {"verification_token": token}), 201)

    async def sign(self, who: Org, contract_id: str) -> httpx.Response:
        token = await self.verification(who, "sign_contract", contract_id)
        return await self.post(f"/contracts/{contract_id}/sign", who, {"verification_token": token})

    async def agreed_contract(
        self,
        enterprise: Org,
        provider: Org,
        order_id: str,
        total_fen: int,
        deposit_fen: int,
        terms: str = "甲方委托乙方提供专利分级评价服务，乙方出具评价报告。",
    ) -> dict[str, Any]:
        """accept -> draft -> return -> edit -> agree: the agreed contract, whose terms are
        ``terms`` and then 服务期限为合同签订后30日内。 (added after the return)."""
        expect(await self.post(f"/orders/{order_id}/accept", provider))
        await self.status(enterprise, order_id, "awaiting_contract")
        draft = await self.contract(provider, order_id)
        assert draft["state"] == "drafting", draft
        cid = draft["id"]
        expect(
            await self.put(
                f"/contracts/{cid}",
                provider,
                {"total_fen": total_fen, "deposit_fen": deposit_fen, "terms": terms},
            )
        )
        expect(await self.post(f"/contracts/{cid}/submit", provider))
        back = expect(await self.post(f"/contracts/{cid}/return", enterprise, {"reason": "请补充服务期限"}))
        assert back["state"] == "returned" and back["return_reason"] == "请补充服务期限"
        terms += "服务期限为合同签订后30日内。"
        expect(
            await self.put(
                f"/contracts/{cid}",
                provider,
                {"total_fen": total_fen, "deposit_fen": deposit_fen, "terms": terms},
            )
        )
        expect(await self.post(f"/contracts/{cid}/submit", provider))
        agreed = expect(await self.post(f"/contracts/{cid}/agree", enterprise))
        assert agreed["state"] == "agreed", agreed
        return agreed

    async def sealed(self, *orgs: Org) -> None:
        """制作签章, once per organisation."""
        for org in orgs:
            if org.org_id not in self.seals:
                await self.seal(org)
                self.seals.add(org.org_id)

    async def signed_order(
        self, total_fen: int = 7600, deposit_fen: int = 1000
    ) -> tuple[Org, Org, dict[str, Any], dict[str, Any]]:
        """A fresh enterprise (with its voucher) and provider (with the manual's product), an
        order with the voucher, its contract agreed, sealed and signed by both: the order
        in 待支付 (or further when a stage is 0). Returns (enterprise, provider, order, contract)."""
        enterprise, _ = await self.enterprise_with_voucher()
        provider = await self.provider()
        product = await self.product(provider)
        order = await self.order(enterprise, product["id"])
        assert order["status"] == "awaiting_acceptance", order
        agreed = await self.agreed_contract(enterprise, provider, order["id"], total_fen, deposit_fen)
        await self.sealed(enterprise, provider)
        expect(await self.sign(enterprise, agreed["id"]))
        signed = expect(await self.sign(provider, agreed["id"]))
        assert signed["state"] == "signed", signed
        return enterprise, provider, order, signed

    async def plan(self, who: Org, order_id: str) -> dict[str, Any]:
        async def probe() -> httpx.Response:
            return await self.get(f"/orders/{order_id}/payment", who)

        return dict(
            (await eventually(probe, lambda r: r.status_code == 200, f"payment plan of {order_id}")).json()
        )

    async def remit(self, enterprise: Org, order_id: str, amount_fen: int) -> dict[str, Any]:
        """对公转账 recorded by the enterprise, with its receipt."""
        body = {
            "amount_fen": amount_fen,
            "bank_reference": "HX" + uuid.uuid4().hex[:12].upper(),
            "payer_account": "6228480000000000001",
            "receipt_file_ids": [await self.file(enterprise, "汇款凭证.pdf")],
        }
        r = await self.post(
            f"/orders/{order_id}/remittances", enterprise, body, **{"Idempotency-Key": str(uuid.uuid4())}
        )
        return expect(r, 201)

    async def paid(self, enterprise: Org, provider: Org, order_id: str, amount_fen: int) -> dict[str, Any]:
        """A transfer recorded and confirmed by the payee (到账核实)."""
        remittance = await self.remit(enterprise, order_id, amount_fen)
        confirmed = expect(await self.post(f"/remittances/{remittance['id']}/confirm", provider))
        assert confirmed["state"] == "confirmed", confirmed
        return confirmed

    async def settled_order(self) -> tuple[Org, Org, dict[str, Any], dict[str, Any]]:
        """The manual's whole journey after signing: the deposit (1000) in two installments,
        each confirmed -> 待服务; start -> 待完成; complete -> 待支付 (balance); the balance
        confirmed -> 已完成; evaluated -> 评价完成; the settlement claimed, approved, paid.
        Returns (enterprise, provider, order detail, the paid settlement)."""
        enterprise, provider, order, contract = await self.signed_order(total_fen=7600, deposit_fen=1000)
        oid = order["id"]
        await self.status(enterprise, oid, "awaiting_deposit")
        plan = await self.plan(enterprise, oid)
        assert (plan["payable_fen"], plan["deposit_fen"], plan["balance_fen"]) == (3800, 1000, 2800), plan
        assert plan["payable_upper"] == "叁拾捌元整", plan
        assert plan["payee"]["account_name"] == provider.name, plan

        await self.paid(enterprise, provider, oid, 600)
        after_first = await self.order_in(
            enterprise, oid, lambda o: o["paid_fen"] == 600, "the first installment"
        )
        assert after_first["status"] == "awaiting_deposit"
        await self.paid(enterprise, provider, oid, 400)
        await self.status(enterprise, oid, "awaiting_service")

        expect(await self.post(f"/orders/{oid}/start-service", provider))
        await self.status(enterprise, oid, "in_service")
        expect(await self.post(f"/orders/{oid}/complete-service", provider))
        await self.status(enterprise, oid, "awaiting_balance")
        await self.paid(enterprise, provider, oid, 2800)
        done = await self.status(enterprise, oid, "completed")
        assert done["fully_paid"] is True and done["paid_fen"] == 3800

        expect(
            await self.post(
                f"/orders/{oid}/evaluation", enterprise, {"rating": 5, "content": "服务专业，报告详实"}
            ),
            201,
        )
        await self.status(enterprise, oid, "evaluated")

        async def claims() -> httpx.Response:
            return await self.get("/me/settlements", provider)

        listed = await eventually(
            claims,
            lambda r: any(i["order_id"] == oid for i in r.json()["items"]),
            "the settlement claim opened",
        )
        claim = next(i for i in listed.json()["items"] if i["order_id"] == oid)
        assert (claim["state"], claim["amount_fen"]) == ("open", 3800), claim
        files = {
            "invoice_file_ids": [await self.file(provider, "发票.pdf")],
            "receipt_file_ids": [await self.file(provider, "汇款凭证.pdf")],
            "proof_file_ids": [await self.file(provider, "服务证明.pdf")],
        }
        assert (
            expect(await self.post(f"/settlements/{claim['id']}/claim", provider, files))["state"]
            == "claimed"
        )
        assert (
            expect(await self.post(f"/admin/settlements/{claim['id']}/approve", self.finance, {}))["state"]
            == "approved"
        )
        paid = expect(
            await self.post(
                f"/admin/settlements/{claim['id']}/pay",
                self.finance,
                {"payout_reference": "DF" + uuid.uuid4().hex[:10]},
            )
        )
        assert paid["state"] == "paid", paid
        detail = await self.order_in(
            enterprise, oid, lambda o: o["settled_fen"] == 3800, "the settlement shown on the order"
        )
        return enterprise, provider, detail, {**paid, "contract_id": contract["id"]}

    # --- the invariants ---------------------------------------------------------------------------

    def database_urls(self) -> dict[str, str]:
        env = self.platform.processes.env
        return {
            s.name: env[f"{s.env_prefix}DATABASE_URL"]
            for s in registry.SERVICES
            if f"{s.env_prefix}DATABASE_URL" in env
        }

    def run_invariants(self) -> subprocess.CompletedProcess[str]:
        urls = self.database_urls()
        args = [
            a for name in ("quota", "orders", "contracts", "payments") for a in (f"--{name}-url", urls[name])
        ]
        exe = Path(sys.executable).with_name("voucher-invariants")
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        return subprocess.run([str(exe), "-v", *args], capture_output=True, text=True, env=env, timeout=60)

    async def invariants_hold(self, within: float = 15) -> str:
        """``voucher-invariants`` exits 0 once the events in flight have landed (a quiescent
        point); its last output otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            done = await asyncio.to_thread(self.run_invariants)
            if done.returncode == 0:
                assert not [line for line in done.stdout.splitlines() if line.startswith("skipped")], (
                    done.stdout
                )
                return done.stdout
            if loop.time() > deadline:
                raise AssertionError(
                    f"voucher-invariants exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
                )
            await asyncio.sleep(0.5)
