"""Public routes of orders (API.md's orders rows): thin, deps -> service -> one commit -> Out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from common import orgs
from common.app import SessionDep
from common.auth import CurrentUser, Principal, StaffUser
from common.idempotency import IdempotencyDep
from common.pagination import Paging, TabbedPage
from orders import errors, service
from orders.deps import (
    ActiveProviderOrder,
    ClientsDep,
    EnterpriseOrder,
    EnterpriseUser,
    ProviderOrder,
    ProviderUser,
    SettingsDep,
    VisibleOrder,
    viewer_of,
)
from orders.domain import Actor, Status, Step, progress, sees_contacts
from orders.domain import actions as allowed_actions
from orders.models import Order, OrderEvaluation
from orders.schemas import (
    CancelIn,
    ContactsOut,
    EvaluationIn,
    EvaluationOut,
    OrderDetailOut,
    OrderIn,
    OrderOut,
    ProgressOut,
    RejectIn,
    StepOut,
    Tab,
)

router = APIRouter(prefix="/api/v1", tags=["orders"])

TabQuery = Annotated[
    Tab | None, Query(description="页签：全部/待接单/待签合同/待支付/待服务/待完成/已完成/订单取消/评价完成")
]
StatusQuery = Annotated[Status | None, Query(description="订单状态")]


def screen(order: Order, actor: Actor | None) -> dict[str, Any]:
    """What a row or the order page shows besides the order's facts: the caller's actions
    (the order's and the contract's) and where the order stands on the six-step bar."""
    state = Status(order.status)
    bar = progress(state, accepted=order.accepted_at is not None, signed=order.signed_at is not None)
    acts = (
        allowed_actions(state, actor, service.facts(order))
        if actor in (Actor.ENTERPRISE, Actor.PROVIDER)
        else []
    )
    return {"actions": acts, "current_step": bar.current, "steps_done": list(bar.done)}


def order_out(order: Order, actor: Actor | None) -> OrderOut:
    return OrderOut.model_validate(order).model_copy(update=screen(order, actor))


async def detail_out(session: SessionDep, order: Order, principal: Principal) -> OrderDetailOut:
    actor = viewer_of(order, principal)
    out = OrderDetailOut.model_validate(order).model_copy(update=screen(order, actor))
    steps = await service.timeline(session, order.id)
    evaluation = await session.get(OrderEvaluation, order.id)
    progress = [
        ProgressOut(label="开始服务", done=order.service_started_at is not None, at=order.service_started_at),
        ProgressOut(label="服务中", done=order.service_started_at is not None, at=order.service_started_at),
        ProgressOut(
            label="服务完成", done=order.service_completed_at is not None, at=order.service_completed_at
        ),
    ]
    return out.model_copy(
        update={
            "timeline": [StepOut.model_validate(s) for s in steps],
            "service_progress": progress,
            "evaluation": EvaluationOut.model_validate(evaluation) if evaluation else None,
            "contacts": ContactsOut.model_validate(order) if sees_contacts(actor) else None,
        }
    )


# --- submission ---------------------------------------------------------------------------------


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    summary="提交订单（申请服务）",
    responses={200: {"description": "同一 Idempotency-Key 的重放"}},
)
async def submit_order(
    body: OrderIn,
    principal: EnterpriseUser,
    session: SessionDep,
    idem: IdempotencyDep,
    settings: SettingsDep,
    clients: ClientsDep,
) -> OrderOut | JSONResponse:
    async with idem.claim(principal.user_id, body) as claim:
        if claim.replay is not None:
            return claim.replay
        order = await service.submit(session, settings, clients, principal, body)
        out = order_out(order, Actor.ENTERPRISE)
        await claim.done(session, 201, out)
        await session.commit()
        return out


# --- lists --------------------------------------------------------------------------------------


async def _list(
    session: SessionDep,
    column: object,
    org_id: str | None,
    actor: Actor | None,
    paging: Paging,
    tab: Tab | None,
    status: Status | None,
) -> TabbedPage[OrderOut]:
    total, rows = await service.page(
        session, column, org_id, paging, tab=tab.value if tab else None, status=status
    )
    return TabbedPage[OrderOut](
        items=[order_out(o, actor) for o in rows],
        total=total,
        counts=await service.counts(session, column, org_id),
        **paging.echo(),
    )


@router.get("/me/orders", response_model=TabbedPage[OrderOut], summary="我购买的服务")
async def my_orders(
    principal: EnterpriseUser,
    session: SessionDep,
    paging: Paging,
    tab: TabQuery = None,
    status: StatusQuery = None,
) -> TabbedPage[OrderOut]:
    return await _list(session, Order.enterprise_id, principal.org_id, Actor.ENTERPRISE, paging, tab, status)


@router.get("/me/service-orders", response_model=TabbedPage[OrderOut], summary="我的服务订单（服务机构）")
async def my_service_orders(
    principal: ProviderUser,
    session: SessionDep,
    paging: Paging,
    tab: TabQuery = None,
    status: StatusQuery = None,
) -> TabbedPage[OrderOut]:
    return await _list(session, Order.provider_id, principal.org_id, Actor.PROVIDER, paging, tab, status)


@router.get("/admin/orders", response_model=TabbedPage[OrderOut], summary="订单管理（管理端）")
async def all_orders(
    _staff: StaffUser, session: SessionDep, paging: Paging, tab: TabQuery = None, status: StatusQuery = None
) -> TabbedPage[OrderOut]:
    return await _list(session, None, None, None, paging, tab, status)


@router.get("/orders/{order_id}", response_model=OrderDetailOut, summary="订单详情")
async def order_detail(order: VisibleOrder, principal: CurrentUser, session: SessionDep) -> OrderDetailOut:
    return await detail_out(session, order, principal)


# --- steps ----------------------------------------------------------------------------------------


async def _done(session: SessionDep, order: Order, principal: Principal) -> OrderDetailOut:
    await session.commit()
    return await detail_out(session, order, principal)


@router.post("/orders/{order_id}/cancel", response_model=OrderDetailOut, summary="取消订单")
async def cancel_order(
    order: EnterpriseOrder,
    principal: EnterpriseUser,
    session: SessionDep,
    settings: SettingsDep,
    body: CancelIn | None = None,
) -> OrderDetailOut:
    """待接单: cancelled at once. 待签合同: contracts is asked to void the contract (the order is
    cancelled when it does). 待支付 with nothing paid: contracts is asked to terminate it."""
    reason = (body.reason if body else None) or "企业取消订单"
    await service.act(session, settings, order, Step.CANCEL, principal, Actor.ENTERPRISE, reason)
    return await _done(session, order, principal)


@router.post("/orders/{order_id}/accept", response_model=OrderDetailOut, summary="服务机构接单")
async def accept_order(
    order: ActiveProviderOrder,
    principal: ProviderUser,
    session: SessionDep,
    settings: SettingsDep,
    clients: ClientsDep,
) -> OrderDetailOut:
    """接单: only with a receiving account on file (the enterprise pays into it)."""
    if not await orgs.has_receiving_account(clients, order.provider_id):
        raise errors.bank_account_required()
    await service.act(session, settings, order, Step.ACCEPT, principal, Actor.PROVIDER)
    return await _done(session, order, principal)


@router.post("/orders/{order_id}/reject", response_model=OrderDetailOut, summary="服务机构拒绝接单")
async def reject_order(
    order: ProviderOrder, principal: ProviderUser, body: RejectIn, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.REJECT, principal, Actor.PROVIDER, body.reason)
    return await _done(session, order, principal)


@router.post("/orders/{order_id}/start-service", response_model=OrderDetailOut, summary="开始服务")
async def start_service(
    order: ProviderOrder, principal: ProviderUser, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.START_SERVICE, principal, Actor.PROVIDER)
    return await _done(session, order, principal)


@router.post("/orders/{order_id}/complete-service", response_model=OrderDetailOut, summary="服务完成")
async def complete_service(
    order: ProviderOrder, principal: ProviderUser, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.COMPLETE_SERVICE, principal, Actor.PROVIDER)
    return await _done(session, order, principal)


@router.post(
    "/orders/{order_id}/evaluation", status_code=201, response_model=EvaluationOut, summary="服务评价"
)
async def evaluate_order(
    order: EnterpriseOrder,
    principal: EnterpriseUser,
    body: EvaluationIn,
    session: SessionDep,
    settings: SettingsDep,
) -> EvaluationOut:
    evaluation = await service.evaluate(session, settings, order, principal, body)
    await session.commit()
    return EvaluationOut.model_validate(evaluation)
