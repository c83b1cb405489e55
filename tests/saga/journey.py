"""The whole voucher saga driven in the saga harness, with the real quota, orders, contracts and
payments (catalog and identity faked: a product dict, files, and the test issuer's tokens and
face-check tokens), and the lag matrix built on it.

A :class:`Cell` is one fresh enterprise and provider (each its own voucher, product and seals),
one order, one :class:`Branch` of the journey, and where to hold what: ``hold`` (a service and
its ``relay`` or ``consumer``) from step ``at`` on. :func:`run_cells` drives many cells on one
harness together:

1. every cell's steps before ``at``, as people would, each step waited for until what it leads
   to has arrived (nothing is held yet: a step that fails here fails the cell);
2. the hold; then the remaining steps of every cell in rounds (each cell up to its next step
   that sets something off), a settle after each round to let the rest go on: a step refused
   because a state it needs has not arrived (or the service said no) is a legal outcome,
   recorded, and the branch goes on;
3. the release, a settle until nothing is in flight (retries included), and the verdict:
   :func:`illegal` on each cell's end state across the four services, nothing of the cell
   parked or left unpublished, and ``voucher-invariants`` over the four databases.

:func:`probe` runs every branch once with nothing held and records which service's relay and
consumer had work at each step: the matrix holds a part only at the steps where it has work
(holding it at a step where it has none is the same cell as holding it at its next one).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from common import registry
from common.bus.consumer import REDELIVER_TIMER
from common.bus.dlq import rabbit_list
from common.bus.rabbitmq import RabbitTransport, retry_queue
from common.events import BankAccountChanged, OrganizationCertified, ProviderApproved
from common.testing.saga import FakeFile, Part, SagaHarness
from common.testing.tokens import Caller
from invariants.checks import Violation, check_all
from invariants.readers import read_all
from quota.domain.campaigns import campaign_spec
from quota.service.campaigns import put_campaign
from quota.testing import Quota, make_uscc

API = "/api/v1"
SERVICES = ("quota", "orders", "contracts", "payments")
# Retries long enough for a flood of early events after a release (each under settle's
# one-second look-ahead at due timers); parked only after about two seconds of retrying.
RETRIES = [0.1, 0.25, 0.5, 1.0]
# Each service's connection pool (writers; as many again at a peak), and the requests and
# reads the cells make at once: the world stays well within the server's connection budget.
POOL = 2
CONCURRENCY = 4

# The manual's product: 76元 (max subsidy 138元) -> subsidy 38元; deposit 10元, balance 28元.
PRICE, MAX_SUBSIDY, SUBSIDY, DEPOSIT = 7600, 13800, 3800, 1000
PAYABLE = PRICE - SUBSIDY
BALANCE = PAYABLE - DEPOSIT
VOUCHER = 5_000_000
CATEGORY = "数字化转型"

Hold = tuple[str, Part]


class Refused(Exception):
    """The service said no, or what the step needs has not arrived yet."""


class ServerError(Exception):
    """A 5xx (or a 401: the caller's token refused): never a legal outcome."""


class BaselineBroken(Exception):
    """A step before the hold (nothing held) failed or its effect never arrived."""


# --- the world: one harness, the fakes, the platform's staff -----------------------------------


@dataclass
class World:
    h: SagaHarness
    products: dict[str, dict[str, Any]]
    files: dict[str, FakeFile]
    quota: Quota
    probed: dict[str, list[frozenset[Hold]]] = field(default_factory=dict)  # branch -> work per step
    # Requests and reads at once: many cells share the services' small pools (POOL).
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENCY))
    # One contract document rendered at a time: reportlab's shared TTFont is not thread-safe
    # (two renders in to_thread at once fail now and then with a KeyError in its subsetting,
    # a 500 on 同意; reported to the lead). The cells are many enterprises at once; this
    # matrix is about lag, not about that.
    rendering: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def start(
        cls, h: SagaHarness, products: dict[str, dict[str, Any]], files: dict[str, FakeFile]
    ) -> World:
        quota = Quota(h, files, products)
        async with quota.db.transaction() as s:
            await put_campaign(s, quota.year, campaign_spec(quota.year))
        return cls(h, products, files, quota)

    def client(self, service: str) -> httpx.AsyncClient:
        return self.h.client(service)

    async def cell(self, branch: Branch, hold: Hold | None = None, at: int | None = None) -> Cell:
        """A fresh enterprise (certified, with a 5万 general voucher) and provider (certified,
        onboarded, with a receiving account and the manual's product). The organisations'
        facts are published as identity and catalog would (each its own stream: together);
        the caller settles."""
        async with self.gate:
            return await self._cell(branch, hold, at)

    async def _cell(self, branch: Branch, hold: Hold | None, at: int | None) -> Cell:
        h = self.h
        enterprise = h.issuer.member(caps=("enterprise",))
        provider = h.issuer.member(caps=("enterprise", "provider"))
        e, p = str(enterprise.org_id), str(provider.org_id)
        tag = uuid.uuid4().hex[:6]
        provider_name = f"广西测试科技服务有限公司{tag}"
        await asyncio.gather(
            h.publish(
                OrganizationCertified(
                    org_id=e, name=f"广西测试制造有限公司{tag}", uscc=make_uscc(), kind="enterprise"
                ),
                aggregate_id=e,
            ),
            h.publish(
                OrganizationCertified(org_id=p, name=provider_name, uscc=make_uscc(), kind="enterprise"),
                aggregate_id=p,
            ),
            h.publish(ProviderApproved(org_id=p, name=provider_name), aggregate_id=p),
            h.publish(
                BankAccountChanged(
                    org_id=p,
                    account_name=provider_name,
                    bank_name="中国工商银行",
                    bank_region="广西壮族自治区南宁市",
                    branch_name="中国工商银行南宁民族支行",
                    account_number="6222020000" + str(uuid.uuid4().int)[:9],
                ),
                aggregate_id=p,
                sequence=2,
            ),
        )
        product_id = str(uuid.uuid4())
        self.products[product_id] = {
            "id": product_id,
            "name": "专利分级评价",
            "category": CATEGORY,
            "provider_id": p,
            "provider_name": provider_name,
            "platform_price_fen": PRICE,
            "market_price_fen": 8000,
            "max_subsidy_fen": MAX_SUBSIDY,
            "status": "listed",
            "listed": True,
            "provider_suspended": False,
        }
        voucher = await self.quota.voucher(e, VOUCHER)
        return Cell(
            self,
            branch,
            hold,
            len(branch.steps) if at is None else at,
            enterprise,
            provider,
            product_id,
            voucher.id,
            # staff tokens of the cell's own: a token lives 15 minutes, a long run is longer
            admin=h.issuer.staff("administrator"),
            finance=h.issuer.staff("finance"),
        )

    async def cells(self, wanted: Iterable[tuple[Branch, Hold | None, int | None]]) -> list[Cell]:
        return list(await asyncio.gather(*(self.cell(b, hold, at) for b, hold, at in wanted)))

    def file(self, owner: Caller, name: str) -> str:
        file_id = str(uuid.uuid4())
        self.files[file_id] = FakeFile(file_id, str(owner.org_id), name=name)
        return file_id

    async def rows(self, service: str, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.gate, self.h.db(service).session() as s:
            return [dict(r._mapping) for r in await s.execute(text(sql), params)]


# --- a cell: one order of one branch, held somewhere -------------------------------------------


@dataclass
class Cell:
    w: World
    branch: Branch
    hold: Hold | None
    at: int  # the index of the step from which ``hold`` is held (len(steps): never)
    enterprise: Caller
    provider: Caller
    product_id: str
    voucher_id: str
    admin: Caller
    finance: Caller
    order_id: str | None = None
    contract_id: str | None = None
    remittance_id: str | None = None
    claim_id: str | None = None
    key: str = field(default_factory=lambda: "lag-" + uuid.uuid4().hex[:12])
    step_no: int = 0  # the step being taken: its requests' correlation id is key:step_no
    log: list[str] = field(default_factory=list)  # what each step did
    broken: str | None = None  # the baseline failed before the hold
    errors: list[str] = field(default_factory=list)  # 5xx answers (never legal)
    problems: list[str] = field(default_factory=list)  # what is illegal in the end state
    end: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        where = "nothing held" if self.hold is None else f"{self.hold[0]} {self.hold[1]} held"
        step = self.branch.steps[self.at].name if self.at < len(self.branch.steps) else "-"
        return f"{self.branch.name} @ {step} ({where})"

    def ids(self) -> set[str]:
        found = {
            self.order_id,
            self.contract_id,
            self.voucher_id,
            self.enterprise.org_id,
            self.provider.org_id,
        }
        return {i for i in found if i}

    # --- plumbing ------------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        who: Caller,
        body: Any = None,
        *,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        # Everything the step sets off carries this correlation id (each service's events
        # inherit the one of the event or request they follow): the probe reads it back.
        headers = {**who.headers, "X-Correlation-ID": f"{self.key}:{self.step_no}"}
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        async with self.w.gate:
            r = await self.w.client(service).request(method, f"{API}{path}", json=body, headers=headers)
        if r.status_code >= 500 or r.status_code == 401:  # a 401: the test's token, not lag
            raise ServerError(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
        if r.status_code >= 400:
            try:
                code = r.json().get("code") or r.json().get("title")
            except ValueError:
                code = r.text[:80]
            raise Refused(f"{r.status_code} {code}")
        return r.json() if r.content else {}

    def need(self, value: str | None, what: str) -> str:
        if value is None:
            raise Refused(f"no {what} yet")
        return value

    async def order(self) -> dict[str, Any] | None:
        if self.order_id is None:
            return None
        rows = await self.w.rows("orders", "SELECT * FROM orders WHERE id = :o", o=self.order_id)
        return rows[0] if rows else None

    async def contract(self) -> dict[str, Any] | None:
        if self.order_id is None:
            return None
        rows = await self.w.rows(
            "contracts", "SELECT id, state FROM contracts WHERE order_id = :o", o=self.order_id
        )
        if rows:
            self.contract_id = rows[0]["id"]
        return rows[0] if rows else None

    async def claim(self) -> dict[str, Any] | None:
        if self.order_id is None:
            return None
        rows = await self.w.rows(
            "payments", "SELECT id, state FROM settlement_claims WHERE order_id = :o", o=self.order_id
        )
        if rows:
            self.claim_id = rows[0]["id"]
        return rows[0] if rows else None

    async def status_is(self, *statuses: str) -> bool:
        o = await self.order()
        return o is not None and o["status"] in statuses


# --- the steps, as people take them ------------------------------------------------------------


async def submit(c: Cell) -> None:
    made = await c.call(
        "orders",
        "POST",
        "/orders",
        c.enterprise,
        {"product_id": c.product_id, "use_voucher": True},
        idempotent=True,
    )
    c.order_id = made["id"]


async def accept(c: Cell) -> None:
    await c.call("orders", "POST", f"/orders/{c.need(c.order_id, 'order')}/accept", c.provider)


async def draft(c: Cell) -> None:
    """The provider sets the amounts and terms and submits the draft to the enterprise."""
    if c.contract_id is None:
        await c.contract()
    cid = c.need(c.contract_id, "contract draft")
    terms = "甲方委托乙方提供专利分级评价服务，乙方出具评价报告。服务期限为合同签订后30日内。"
    await c.call(
        "contracts",
        "PUT",
        f"/contracts/{cid}",
        c.provider,
        {"total_fen": PRICE, "deposit_fen": DEPOSIT, "terms": terms},
    )
    await c.call("contracts", "POST", f"/contracts/{cid}/submit", c.provider)


async def agree(c: Cell) -> None:
    cid = c.need(c.contract_id, "contract")
    async with c.w.rendering:
        await c.call("contracts", "POST", f"/contracts/{cid}/agree", c.enterprise)


async def seals(c: Cell) -> None:
    """制作签章 by both parties (a face check each)."""
    for who in (c.enterprise, c.provider):
        token = c.w.h.issuer.idv(who, purpose="seal")
        await c.call("contracts", "POST", "/me/seal", who, {"verification_token": token})


async def _sign(c: Cell, who: Caller) -> None:
    cid = c.need(c.contract_id, "contract")
    token = c.w.h.issuer.idv(who, purpose="sign_contract", object_id=cid)
    await c.call("contracts", "POST", f"/contracts/{cid}/sign", who, {"verification_token": token})


async def sign_enterprise(c: Cell) -> None:
    await _sign(c, c.enterprise)


async def sign_provider(c: Cell) -> None:
    await _sign(c, c.provider)


async def _remit(c: Cell, amount: int) -> None:
    body = {
        "amount_fen": amount,
        "bank_reference": "HX" + uuid.uuid4().hex[:12].upper(),
        "payer_account": "6228480000000000001",
        "receipt_file_ids": [c.w.file(c.enterprise, "汇款凭证.pdf")],
    }
    made = await c.call(
        "payments",
        "POST",
        f"/orders/{c.need(c.order_id, 'order')}/remittances",
        c.enterprise,
        body,
        idempotent=True,
    )
    c.remittance_id = made["id"]


async def remit_deposit(c: Cell) -> None:
    await _remit(c, DEPOSIT)


async def remit_balance(c: Cell) -> None:
    c.remittance_id = None
    await _remit(c, BALANCE)


async def confirm(c: Cell) -> None:
    """到账核实 by the payee: the last transfer the enterprise recorded."""
    await c.call(
        "payments", "POST", f"/remittances/{c.need(c.remittance_id, 'transfer recorded')}/confirm", c.provider
    )


async def start_service(c: Cell) -> None:
    await c.call("orders", "POST", f"/orders/{c.need(c.order_id, 'order')}/start-service", c.provider)


async def complete_service(c: Cell) -> None:
    await c.call("orders", "POST", f"/orders/{c.need(c.order_id, 'order')}/complete-service", c.provider)


async def evaluate(c: Cell) -> None:
    await c.call(
        "orders",
        "POST",
        f"/orders/{c.need(c.order_id, 'order')}/evaluation",
        c.enterprise,
        {"rating": 5, "content": "服务专业，报告详实"},
    )


async def claim(c: Cell) -> None:
    """申请兑付 with the invoice, a transfer receipt and the service's proof."""
    if c.claim_id is None:
        await c.claim()
    files = {
        "invoice_file_ids": [c.w.file(c.provider, "发票.pdf")],
        "receipt_file_ids": [c.w.file(c.provider, "汇款凭证.pdf")],
        "proof_file_ids": [c.w.file(c.provider, "服务证明.pdf")],
    }
    await c.call(
        "payments", "POST", f"/settlements/{c.need(c.claim_id, 'settlement claim')}/claim", c.provider, files
    )


async def approve(c: Cell) -> None:
    await c.call(
        "payments", "POST", f"/admin/settlements/{c.need(c.claim_id, 'claim')}/approve", c.finance, {}
    )


async def pay(c: Cell) -> None:
    await c.call(
        "payments",
        "POST",
        f"/admin/settlements/{c.need(c.claim_id, 'claim')}/pay",
        c.finance,
        {"payout_reference": "DF" + uuid.uuid4().hex[:10]},
    )


async def cancel(c: Cell) -> None:
    """取消订单 by the enterprise."""
    await c.call(
        "orders",
        "POST",
        f"/orders/{c.need(c.order_id, 'order')}/cancel",
        c.enterprise,
        {"reason": "项目取消"},
    )


async def terminate(c: Cell) -> None:
    """Staff (an administrator) terminate the signed contract."""
    if c.contract_id is None:
        await c.contract()
    cid = c.need(c.contract_id, "contract")
    await c.call(
        "contracts", "POST", f"/admin/contracts/{cid}/terminate", c.admin, {"reason": "服务机构无法履约"}
    )


# --- what each step leads to when nothing lags -------------------------------------------------


async def reserved(c: Cell) -> bool:
    return await c.status_is("awaiting_acceptance")


async def drafted(c: Cell) -> bool:
    return await c.status_is("awaiting_contract") and (await c.contract()) is not None


async def signed(c: Cell) -> bool:
    o = await c.order()
    plan = await c.w.rows("payments", "SELECT state FROM payment_plans WHERE order_id = :o", o=c.order_id)
    return (
        o is not None
        and o["status"] == "awaiting_deposit"
        and o["voucher_state"] == "committed"
        and bool(plan)
    )


async def deposit_met(c: Cell) -> bool:
    return await c.status_is("awaiting_service")


async def completed(c: Cell) -> bool:
    return await c.status_is("completed") and (await c.claim()) is not None


async def settled(c: Cell) -> bool:
    o = await c.order()
    return o is not None and o["settled_fen"] == SUBSIDY


async def cancelled(c: Cell) -> bool:
    o = await c.order()
    return o is not None and o["status"] == "cancelled" and o["voucher_state"] == "released"


async def terminated(c: Cell) -> bool:
    o = await c.order()
    if o is None or o["status"] != "terminated" or o["voucher_state"] != "reversed":
        return False
    plan = await c.w.rows("payments", "SELECT state FROM payment_plans WHERE order_id = :o", o=c.order_id)
    return bool(plan) and plan[0]["state"] == "terminated"


async def termination_refused(c: Cell) -> bool:
    """The termination of a served order is refused (orders decides the completion): the
    contract is signed again, the order not frozen, payouts not held."""
    rows = await c.w.rows(
        "contracts",
        "SELECT state, termination_refused_reason FROM contracts WHERE order_id = :o",
        o=c.order_id,
    )
    o = await c.order()
    plan = await c.w.rows(
        "payments", "SELECT termination_request_id FROM payment_plans WHERE order_id = :o", o=c.order_id
    )
    return (
        bool(rows)
        and rows[0]["state"] == "signed"
        and bool(rows[0]["termination_refused_reason"])
        and o is not None
        and not o["termination_pending"]
        and bool(plan)
        and plan[0]["termination_request_id"] is None
    )


@dataclass(frozen=True)
class Step:
    name: str
    act: Callable[[Cell], Awaitable[None]]
    ready: Callable[[Cell], Awaitable[bool]] | None = None  # what it leads to when nothing lags
    may_refuse: bool = False  # refused even when nothing lags (the loser of a race)


@dataclass(frozen=True)
class Branch:
    name: str
    steps: tuple[Step, ...]


SUBMIT = Step("submit", submit, reserved)
ACCEPT = Step("accept", accept, drafted)
TO_SIGNING = (
    SUBMIT,
    ACCEPT,
    Step("draft", draft),
    Step("agree", agree),
    Step("seals", seals),
    Step("sign_enterprise", sign_enterprise),
    Step("sign_provider", sign_provider, signed),
)
DEPOSIT_PAID = (Step("remit_deposit", remit_deposit), Step("confirm_deposit", confirm, deposit_met))
TO_APPROVAL = (
    *TO_SIGNING,
    *DEPOSIT_PAID,
    Step("start_service", start_service),
    Step("complete_service", complete_service),
    Step("remit_balance", remit_balance),
    Step("confirm_balance", confirm, completed),
    Step("evaluate", evaluate),
    Step("claim", claim),
    Step("approve", approve),
)

BRANCHES: tuple[Branch, ...] = (
    Branch("settled", (*TO_APPROVAL, Step("pay", pay, settled))),
    Branch("cancel_before_acceptance", (SUBMIT, Step("cancel", cancel, cancelled))),
    Branch("cancel_after_acceptance", (SUBMIT, ACCEPT, Step("cancel", cancel, cancelled))),
    Branch("cancel_signed_unpaid", (*TO_SIGNING, Step("cancel", cancel, terminated))),
    Branch("terminate_with_deposit", (*TO_SIGNING, *DEPOSIT_PAID, Step("terminate", terminate, terminated))),
    Branch(
        "terminate_transfer_pending",
        (
            *TO_SIGNING,
            Step("remit_deposit", remit_deposit),
            Step("terminate", terminate, terminated),
            # the payee then confirms the transfer it received
            Step("confirm_deposit", confirm, may_refuse=True),
        ),
    ),
    Branch(
        "payout_then_terminate",
        (*TO_APPROVAL, Step("pay", pay, settled), Step("terminate", terminate, may_refuse=True)),
    ),
    Branch(
        # a served order's termination is refused (orders decides the completion), so the
        # payout still goes out, whichever of the two lags
        "terminate_served_then_payout",
        (*TO_APPROVAL, Step("terminate", terminate, termination_refused), Step("pay", pay, may_refuse=True)),
    ),
    Branch(
        # a dispute while in service: the termination races the provider's 服务完成
        "terminate_in_service",
        (
            *TO_SIGNING,
            *DEPOSIT_PAID,
            Step("start_service", start_service),
            Step("terminate", terminate, terminated),
            Step("complete_service", complete_service, may_refuse=True),
        ),
    ),
)
BRANCH = {b.name: b for b in BRANCHES}


class Clock:
    def __init__(self) -> None:
        self.t, self.p = time.monotonic(), time.process_time()
        self.laps: list[str] = []

    def lap(self, what: str) -> None:
        t, p = time.monotonic(), time.process_time()
        self.laps.append(f"{what} {t - self.t:.1f}s (cpu {p - self.p:.1f}s)")
        self.t, self.p = t, p

    def __str__(self) -> str:
        return ", ".join(self.laps)


# --- driving -------------------------------------------------------------------------------------


async def eventually(c: Cell, step: Step, within: float = 30.0) -> None:
    assert step.ready is not None
    deadline = time.monotonic() + within
    while not await step.ready(c):
        if time.monotonic() > deadline:
            raise BaselineBroken(
                f"{step.name}: what it leads to ({step.ready.__name__}) did not arrive within {within:g}s "
                f"with nothing held; the order is {await c.order()}"
            )
        await asyncio.sleep(0.1)


async def take(c: Cell, i: int, *, strict: bool) -> None:
    """Step ``i``; ``strict`` (nothing held): it must be taken and lead where it leads."""
    step = c.branch.steps[i]
    c.step_no = i
    try:
        await step.act(c)
    except ServerError as why:
        c.log.append(f"{step.name}: {why}")
        c.errors.append(f"{step.name}: {why}")
        if strict:
            raise BaselineBroken(f"{step.name}: {why}") from None
        return
    except Refused as why:
        c.log.append(f"{step.name}: refused ({why})")
        if strict and not step.may_refuse:
            raise BaselineBroken(f"{step.name} refused with nothing held: {why}") from None
        return
    c.log.append(f"{step.name}: done")
    if strict and step.ready is not None:
        await eventually(c, step)


async def onward(w: World, c: Cell, todo: dict[int, int]) -> None:
    """The cell's next steps up to one that sets something off (nothing happens after the
    others: no need to wait)."""
    steps = c.branch.steps
    while todo[id(c)] < len(steps):
        i = todo[id(c)]
        todo[id(c)] = i + 1
        await take(c, i, strict=False)
        if sets_off(w, c.branch, i):
            return


async def prefix(c: Cell) -> None:
    try:
        for i in range(c.at):
            await take(c, i, strict=True)
    except BaselineBroken as why:
        c.broken = str(why)


async def run_cells(w: World, cells: list[Cell], hold: Hold | None) -> None:
    """Drive ``cells`` (all held at the same part, each from its own step), then judge them."""
    h = w.h
    clock = Clock()
    await h.settle()
    await asyncio.gather(*(prefix(c) for c in cells))
    await h.settle()
    clock.lap("prefix")
    live = [c for c in cells if c.broken is None]
    if hold is not None:
        h.hold(*hold)
    try:
        rounds = 0
        todo = {id(c): c.at for c in live}  # each cell's next step
        while any(todo[id(c)] < len(c.branch.steps) for c in live):
            await asyncio.gather(*(onward(w, c, todo) for c in live))
            await h.settle(within=60)  # let the rest go on (what the steps set off)
            rounds += 1
        clock.lap(f"held ({rounds} rounds)")
    finally:
        h.release_all()
    await judge(w, cells)
    clock.lap("judged")
    print(f"\n[lag] {hold}: {clock}")


async def probe(w: World, branches: Iterable[Branch] = BRANCHES) -> list[Cell]:
    """Every branch once with nothing held (each step waited for until what it leads to has
    arrived), then judged; records which parts had work in each step: the services whose
    relay published an event the step set off (its correlation id), and those that consume
    such an event. ``w.probed``: branch -> the parts with work, per step."""
    h = w.h
    cells = await w.cells([(b, None, None) for b in branches])
    await h.settle()
    await asyncio.gather(*(prefix(c) for c in cells))
    await quiesce(w)
    for c in cells:
        work: list[set[Hold]] = [set() for _ in c.branch.steps]
        for service, correlation, event_type in await published(w, c.order_id):
            key, _, step = (correlation or "").rpartition(":")
            if key == c.key and step.isdigit() and int(step) < len(work):
                work[int(step)] |= parts_with_work([(service, event_type)])
        w.probed[c.branch.name] = [frozenset(p) for p in work]
    await judge(w, cells)
    return cells


async def published(w: World, order_id: str | None) -> list[tuple[str, str | None, str]]:
    """(service, correlation id, event type) of every event the four services wrote for the order."""
    if order_id is None:
        return []
    found: list[tuple[str, str | None, str]] = []
    for service in SERVICES:
        rows = await w.rows(
            service,
            "SELECT body->>'correlation_id' AS correlation, event_type FROM outbox WHERE aggregate_id = :o",
            o=order_id,
        )
        found += [(service, r["correlation"], r["event_type"]) for r in rows]
    return found


def parts_with_work(events: Iterable[tuple[str, str]]) -> frozenset[Hold]:
    """Who has work with these (publisher, event type): the publisher's relay, and the
    consumer of every service (of the four) that consumes the type."""
    parts: set[Hold] = set()
    for service, event_type in events:
        parts.add((service, "relay"))
        parts |= {(s, "consumer") for s in SERVICES if event_type in registry.service(s).consumes}
    return frozenset(parts)


def sets_off(w: World, branch: Branch, i: int) -> bool:
    """Whether step ``i`` of ``branch`` publishes anything (unknown: it may)."""
    steps = w.probed.get(branch.name)
    return steps is None or i >= len(steps) or bool(steps[i])


def cells_for(w: World, hold: Hold) -> list[tuple[Branch, int]]:
    """(branch, step) wherever ``hold`` has work in the probe."""
    return [
        (BRANCH[name], i)
        for name, steps in w.probed.items()
        for i, parts in enumerate(steps)
        if hold in parts
    ]


# --- settling after the release --------------------------------------------------------------------


async def in_flight(w: World) -> list[str]:
    """What is still on its way: outbox rows, in-process redeliveries waiting out a retry,
    messages in a RabbitMQ retry queue."""
    busy: list[str] = []
    for service in SERVICES:
        pending = await w.rows(service, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        waiting = await w.rows(
            service,
            "SELECT count(*) AS n FROM timers WHERE kind = :k AND state = 'scheduled'",
            k=REDELIVER_TIMER,
        )
        if pending[0]["n"]:
            busy.append(f"{service}: {pending[0]['n']} unpublished")
        if waiting[0]["n"]:
            busy.append(f"{service}: {waiting[0]['n']} redeliveries waiting")
    transport = w.h.transport
    if isinstance(transport, RabbitTransport) and w.h.rabbit is not None:
        names = [retry_queue(f"{w.h.rabbit.prefix}{s}", i) for s in SERVICES for i in range(len(RETRIES))] + [
            f"{w.h.rabbit.prefix}{s}" for s in SERVICES
        ]
        depths = await transport.queue_depths(names)
        busy += [f"{name}: {n} waiting" for name, n in depths.items() if n]
    return busy


async def quiesce(w: World, within: float = 60.0) -> None:
    """Settle until nothing is in flight, seen twice in a row (a retry in transit between a
    retry queue and its consumer is seen on one of the two looks)."""
    deadline = time.monotonic() + within
    clean = 0
    while clean < 2:
        await w.h.settle(within=within)
        busy = await in_flight(w)
        clean = clean + 1 if not busy else 0
        if busy and time.monotonic() > deadline:
            raise AssertionError(
                f"the saga did not come to rest within {within:g}s after the release: {busy}"
            )
        await asyncio.sleep(0.3)


# --- judging the end state -------------------------------------------------------------------------


SIGNED = {"awaiting_deposit", "awaiting_service", "in_service", "awaiting_balance", "completed", "evaluated"}
BEFORE_SIGNING = {"drafting", "pending_review", "returned", "agreed"}


async def end_state(c: Cell) -> dict[str, Any]:
    w, o = c.w, c.order_id
    order = await c.order()
    contract = await w.rows("contracts", "SELECT id, state FROM contracts WHERE order_id = :o", o=o)
    signatures = await w.rows(
        "contracts",
        "SELECT s.party FROM contract_signatures s JOIN contracts c ON c.id = s.contract_id "
        "WHERE c.order_id = :o ORDER BY s.party",
        o=o,
    )
    reservation = await w.rows(
        "quota", "SELECT state, amount_fen, committed_fen FROM voucher_reservations WHERE order_id = :o", o=o
    )
    plan = await w.rows(
        "payments", "SELECT state, paid_fen, pending_fen FROM payment_plans WHERE order_id = :o", o=o
    )
    remittances = await w.rows(
        "payments",
        "SELECT id, amount_fen, state, decided_role FROM remittances WHERE order_id = :o ORDER BY created_at",
        o=o,
    )
    claims = await w.rows(
        "payments", "SELECT id, state, amount_fen FROM settlement_claims WHERE order_id = :o", o=o
    )
    refunds = await w.rows(
        "payments", "SELECT remittance_id, amount_fen, state FROM payment_refunds WHERE order_id = :o", o=o
    )
    return {
        "order": {
            k: order[k] for k in ("status", "voucher_state", "cancel_requested_in", "paid_fen", "settled_fen")
        }
        if order
        else None,
        "contract": contract[0]["state"] if contract else None,
        "signed_by": [r["party"] for r in signatures],
        # orders' copy of the contract (the buttons on its rows): its state, who has signed
        "contract_copy": {
            "state": order["contract_state"],
            "signed_by": [p for p in ("enterprise", "provider") if order[f"contract_{p}_signed"]],
        }
        if order
        else None,
        "reservation": reservation[0] if reservation else None,
        "plan": plan[0] if plan else None,
        "remittances": remittances,
        "claim": claims[0] if claims else None,
        "refunds": refunds,
    }


def illegal(e: dict[str, Any]) -> list[str]:
    """What is wrong with one order's end state across the four services (DESIGN.md: "Who
    decides what", "Termination"): each order final, or waiting for a person, and every
    service agreeing on which."""
    order, contract, res, plan, claim = e["order"], e["contract"], e["reservation"], e["plan"], e["claim"]
    if order is None:
        return []  # nothing was ordered (the submission itself was refused)
    out: list[str] = []
    status = order["status"]
    rstate = res["state"] if res else None
    pstate = plan["state"] if plan else None
    cstate = claim["state"] if claim else None
    if status == "pending_voucher":
        out.append(f"the order is still pending_voucher (待接单): quota decided {rstate or 'nothing'}")
    if status == "awaiting_acceptance":
        if rstate != "reserved":
            out.append(f"the order awaits acceptance but quota's reservation is {rstate}")
        if contract is not None:
            out.append(f"the order awaits acceptance but contracts has a {contract} contract")
    if status == "awaiting_contract":
        if contract not in BEFORE_SIGNING:
            out.append(f"the order awaits its contract (待签合同) but the contract is {contract}")
        if rstate != "reserved":
            out.append(f"the order awaits its contract but quota's reservation is {rstate}")
    if status in SIGNED:
        if contract != "signed":
            out.append(f"the order is {status} but the contract is {contract}")
        if rstate not in ("committed", "settled"):
            out.append(f"the order is {status} but quota's deduction is {rstate}")
        if pstate not in ("open", "closed"):
            out.append(f"the order is {status} but the payment plan is {pstate}")
    if status in ("awaiting_contract", *SIGNED) and order["cancel_requested_in"]:
        out.append(
            f"the enterprise's cancellation (asked in {order['cancel_requested_in']}) was never answered: "
            f"the order is {status} and still marks it pending (cancel_requested_in); nobody told "
            "the enterprise it was refused, or why"
        )
    if status == "cancelled":
        if contract not in (None, "voided"):
            out.append(f"the order is cancelled but the contract is {contract}")
        if rstate in ("reserved", "committed", "settled"):
            out.append(f"the order is cancelled but quota still holds its voucher ({rstate})")
        if pstate not in (None, "closed"):
            out.append(f"the order is cancelled but the payment plan is {pstate}")
    if status == "terminated":
        if contract != "terminated":
            out.append(f"the order is terminated but the contract is {contract}")
        if rstate not in ("reversed", None):
            out.append(f"the order is terminated but quota's deduction is {rstate} (not reversed)")
        if pstate != "terminated":
            out.append(f"the order is terminated but the payment plan is {pstate}")
        if cstate not in (None, "cancelled", "rejected"):
            out.append(f"the order is terminated but its settlement claim is {cstate}")
        refunded = {f["remittance_id"] for f in e["refunds"]}
        for m in e["remittances"]:
            if m["state"] == "confirmed" and m["id"] not in refunded:
                out.append(f"a confirmed transfer of {m['amount_fen']} fen has no refund due")
            if m["state"] == "rejected" and m["decided_role"] == "system":
                out.append(
                    f"the enterprise's transfer of {m['amount_fen']} fen was rejected by the termination itself: "
                    "no refund is due and the payee can no longer confirm it (the money vanished)"
                )
    if contract == "terminated" and status != "terminated":
        out.append(f"the contract is terminated but the order is {status}")
    if cstate == "paid" and (status == "terminated" or contract == "terminated" or rstate != "settled"):
        out.append(
            f"the settlement was paid out while the order is {status}, the contract {contract} "
            f"and quota's deduction {rstate}: the payout and the termination both succeeded"
        )
    if contract is not None and contract not in (*BEFORE_SIGNING, "signed", "voided", "terminated"):
        out.append(f"the contract is left {contract}: neither terminated nor back to signed")
    out += copy_disagrees(e)
    return out


def copy_disagrees(e: dict[str, Any]) -> list[str]:
    """Orders' copy of the contract (what its rows offer: 同意, 退回修改, 签署...) must end as
    contracts has it: nothing announced reads as a draft, a void before any draft as void."""
    copy, contract = e["contract_copy"], e["contract"]
    if copy is None:
        return []
    state = copy["state"] or "drafting"
    if contract is None:
        if copy["state"] not in (None, "voided"):
            return [f"orders shows a {state} contract but contracts has none"]
        return []
    out = []
    if state != contract:
        out.append(
            f"orders shows the contract {state} but it is {contract}: its rows offer the wrong buttons"
        )
    if (
        contract in ("drafting", "pending_review", "returned", "agreed")
        and copy["signed_by"] != e["signed_by"]
    ):
        out.append(
            f"orders shows {copy['signed_by']} as signed but {e['signed_by']} have: 签署 is offered wrongly"
        )
    return out


async def parked(w: World) -> dict[str, list[str]]:
    """Events nobody applied, by aggregate: RabbitMQ's DLQs or in-process dead redeliveries."""
    found: dict[str, list[str]] = {}
    for service in SERVICES:
        if w.h.rabbit is not None:
            for letter in await rabbit_list(w.h.rabbit.url, f"{w.h.rabbit.prefix}{service}"):
                agg = str((letter.event or {}).get("aggregate_id"))
                found.setdefault(agg, []).append(f"{service} parked {letter.kind}: {letter.error[:200]}")
        rows = await w.rows(
            service,
            "SELECT payload, last_error FROM timers WHERE kind = :k AND state = 'dead'",
            k=REDELIVER_TIMER,
        )
        for r in rows:
            event = r["payload"].get("event") or {}
            agg = str(event.get("aggregate_id"))
            found.setdefault(agg, []).append(
                f"{service} parked {event.get('event_type')}: {(r['last_error'] or '')[:200]}"
            )
    return found


async def judge(w: World, cells: list[Cell]) -> None:
    """Settle everything, then each cell's end state: legal, nothing of it parked or
    unpublished, and ``voucher-invariants`` finding nothing about its orders or organisations."""
    await quiesce(w)
    snapshot, _results = await read_all({s: w.h[s].runtime.settings.db_url for s in SERVICES})
    violations = check_all(snapshot).violations
    dead = await parked(w)
    for c in cells:
        c.end = await end_state(c)
        c.problems = illegal(c.end) if c.broken is None else [f"before the hold: {c.broken}"]
        c.problems += [f"a server error: {e}" for e in c.errors if c.broken is None]
        c.problems += dead.get(str(c.order_id), [])
        c.problems += [f"voucher-invariants: {v}" for v in violations if mine(c, v)]


def mine(c: Cell, v: Violation) -> bool:
    return bool(c.ids() & set(v.ids.values()))


def report(cells: list[Cell]) -> str:
    """The failing cells, readably: branch, step and held part; what is illegal; the end
    state; what each step did."""
    lines: list[str] = []
    for c in cells:
        if not c.problems:
            continue
        lines.append(f"- {c.name}")
        lines += [f"    illegal: {p}" for p in c.problems]
        lines.append(f"    end state: {describe(c.end)}")
        lines.append(f"    steps: {'; '.join(c.log)}")
    failed = sum(1 for c in cells if c.problems)
    return f"{failed} of {len(cells)} cell(s) end in an illegal state:\n" + "\n".join(lines)


def describe(e: dict[str, Any]) -> str:
    if not e or e.get("order") is None:
        return "no order"
    o, res, plan, claim = e["order"], e["reservation"], e["plan"], e["claim"]
    parts = [
        f"order {o['status']} (voucher {o['voucher_state']}, paid {o['paid_fen']}, settled {o['settled_fen']}"
        + (f", cancellation asked in {o['cancel_requested_in']}" if o["cancel_requested_in"] else "")
        + ")",
        f"contract {e['contract']}",
        f"reservation {res['state']} {res['committed_fen'] or res['amount_fen']}"
        if res
        else "no reservation",
        f"plan {plan['state']} paid {plan['paid_fen']} pending {plan['pending_fen']}" if plan else "no plan",
    ]
    if e["remittances"]:
        parts.append(
            "transfers "
            + ", ".join(
                f"{m['amount_fen']} {m['state']}" + (" by system" if m["decided_role"] == "system" else "")
                for m in e["remittances"]
            )
        )
    parts.append(f"claim {claim['state']}" if claim else "no claim")
    if e["refunds"]:
        parts.append("refunds " + ", ".join(f"{f['amount_fen']} {f['state']}" for f in e["refunds"]))
    return "; ".join(parts)
