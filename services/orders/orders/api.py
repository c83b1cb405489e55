"""Public routes of orders (API.md's orders rows): thin, deps -> service -> one commit -> Out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from common import idempotency
from common.app import ClientsDep, ReadSessionDep, SessionDep
from common.auth import CurrentUser, EnterpriseUser, Principal, ProviderUser, StaffUser, capability_required
from common.errors import Problem
from common.idempotency import IdempotencyDep
from common.internal import unavailable
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing
from common.pagination import Paging, TabbedPage
from common.rules import Refusal
from orders import errors, service
from orders.deps import (
    ActiveProviderOrder,
    EnterpriseOrder,
    ProviderOrder,
    ProviderStanding,
    SettingsDep,
    VisibleOrder,
    viewer_of,
)
from orders.domain import Actor, Facts, Status, Step, decide, progress, sees_contacts
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


def refused(state: Status, step: Step, actor: Actor, **facts: Any) -> Problem:
    """What the order's rules answer to ``step`` in ``state`` (for the API description)."""
    outcome = decide(state, step, actor, Facts(**facts))
    assert isinstance(outcome, Refusal), (state, step, facts)
    return errors.from_refusal(outcome)


S = Status
ENTERPRISE = (capability_required("enterprise"),)
PROVIDER = (capability_required("provider"),)
ENTERPRISE_ORDER = (*ENTERPRISE, errors.order_not_found)
PROVIDER_ORDER = (*PROVIDER, errors.order_not_found)
TERMINATING = {"termination_pending": True}


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


async def detail_out(session: AsyncSession, order: Order, principal: Principal) -> OrderDetailOut:
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
    description=(
        "已认证且未被暂停的企业申请一个已上架的服务产品（须带 Idempotency-Key 请求头；同一键重放时答 200 "
        "和第一次的结果）。订单按服务产品当前的平台销售价生成；勾选使用服务券时按服务券预估抵扣，订单先为"
        "“待预留服务券”（pending_voucher），服务券额度预留后进入“待接单”，未勾选时直接待接单。"
        "服务机构须在限期内接单，超时自动取消。事件 orders.order_submitted（不用券时另有 "
        "orders.order_awaiting_acceptance）。"
    ),
    response_description="新提交的订单",
    responses={
        200: {"description": "同一 Idempotency-Key 的重放：第一次提交的订单"},
        **problems(
            *ENTERPRISE,
            organization_suspended,
            organization_syncing,
            errors.product_not_found,
            errors.own_product,
            errors.product_not_listed,
            errors.provider_suspended,
            errors.no_usable_voucher,
            unavailable("catalog"),
            unavailable("quota"),
            idempotency.key_required,
            idempotency.key_reused,
            idempotency.key_in_flight,
            idempotency.claim_lost,
        ),
    },
)
async def submit_order(
    body: OrderIn,
    principal: EnterpriseUser,
    session: SessionDep,
    idem: IdempotencyDep,
    settings: SettingsDep,
    clients: ClientsDep,
) -> OrderOut | JSONResponse:
    """The key is claimed before this request's session touches the database, and a refusal
    has the claim roll the session back before it gives the key back: a request never holds
    two pooled connections (refusals at once, as many as the pool has connections, would
    otherwise each hold one and wait for another until the pool times out, and the consumer
    with them)."""
    async with idem.claim(principal.user_id, body, session) as claim:
        if claim.replay is not None:
            return claim.replay
        order = await service.submit(session, settings, clients, principal, body)
        out = order_out(order, Actor.ENTERPRISE)
        await claim.done(201, out)
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


@router.get(
    "/me/orders",
    response_model=TabbedPage[OrderOut],
    summary="我购买的服务",
    description=(
        "已认证企业的成员查看本单位的订单，新的在前；按页签（全部、待接单、待签合同、待支付、待服务、待完成、"
        "已完成、订单取消、评价完成）或订单状态筛选，并给出各页签的数量。每项的 actions 为企业当前可做的操作。"
    ),
    response_description="一页订单及各页签的数量",
    responses=problems(*ENTERPRISE),
)
async def my_orders(
    principal: EnterpriseUser,
    session: ReadSessionDep,
    paging: Paging,
    tab: TabQuery = None,
    status: StatusQuery = None,
) -> TabbedPage[OrderOut]:
    return await _list(session, Order.enterprise_id, principal.org_id, Actor.ENTERPRISE, paging, tab, status)


@router.get(
    "/me/service-orders",
    response_model=TabbedPage[OrderOut],
    summary="我的服务订单（服务机构）",
    description=(
        "服务机构的成员查看企业向本机构申请的订单，新的在前；页签和筛选同“我购买的服务”。"
        "每项的 actions 为服务机构当前可做的操作（接单、拒绝接单、开始服务、服务完成）。"
    ),
    response_description="一页订单及各页签的数量",
    responses=problems(*PROVIDER),
)
async def my_service_orders(
    principal: ProviderUser,
    session: ReadSessionDep,
    paging: Paging,
    tab: TabQuery = None,
    status: StatusQuery = None,
) -> TabbedPage[OrderOut]:
    return await _list(session, Order.provider_id, principal.org_id, Actor.PROVIDER, paging, tab, status)


@router.get(
    "/admin/orders",
    response_model=TabbedPage[OrderOut],
    summary="订单管理（管理端）",
    description="平台人员查看全部订单，新的在前；页签和筛选同“我购买的服务”，并给出各页签的数量。",
    response_description="一页订单及各页签的数量",
)
async def all_orders(
    _staff: StaffUser,
    session: ReadSessionDep,
    paging: Paging,
    tab: TabQuery = None,
    status: StatusQuery = None,
) -> TabbedPage[OrderOut]:
    return await _list(session, None, None, None, paging, tab, status)


@router.get(
    "/orders/{order_id}",
    response_model=OrderDetailOut,
    summary="订单详情",
    description=(
        "订单的企业、服务机构或平台人员查看订单详情：金额（分）、服务券抵扣、当前可做的操作、订单流程记录、"
        "服务进度（开始服务、服务中、服务完成）、评价，以及双方的联系人（仅订单双方可见）。其他单位查看为 404。"
    ),
    response_description="订单详情",
    responses=problems(errors.order_not_found),
)
async def order_detail(
    order: VisibleOrder, principal: CurrentUser, session: ReadSessionDep
) -> OrderDetailOut:
    return await detail_out(session, order, principal)


# --- steps ----------------------------------------------------------------------------------------


async def _done(session: AsyncSession, order: Order, principal: Principal) -> OrderDetailOut:
    await session.commit()
    return await detail_out(session, order, principal)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderDetailOut,
    summary="取消订单",
    description=(
        "下单企业取消订单，原因可选。待接单时立即取消，已预留的服务券额度随之释放（orders.order_cancelled）；"
        "待签合同时请合同服务作废合同，待支付且未付款时请其终止合同（orders.cancellation_requested），"
        "订单在合同作废或终止后才取消。已付款、已申请取消或合同终止处理中的订单不能取消。"
    ),
    response_description="取消（或已申请取消）后的订单详情",
    responses=problems(
        *ENTERPRISE_ORDER,
        refused(S.COMPLETED, Step.CANCEL, Actor.ENTERPRISE),
        refused(S.AWAITING_CONTRACT, Step.CANCEL, Actor.ENTERPRISE, cancel_requested_in=S.AWAITING_CONTRACT),
        refused(S.AWAITING_DEPOSIT, Step.CANCEL, Actor.ENTERPRISE, paid_fen=100),
        refused(S.AWAITING_DEPOSIT, Step.CANCEL, Actor.ENTERPRISE, **TERMINATING),
    ),
)
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


@router.post(
    "/orders/{order_id}/accept",
    response_model=OrderDetailOut,
    summary="服务机构接单",
    description=(
        "未被暂停的服务机构接受待接单的订单，订单进入待签合同，合同服务随之生成合同草稿"
        "（事件 orders.order_accepted），双方须在限期内签署。服务机构须已完成支付认证（收款账户）。"
    ),
    response_description="接单后的订单详情",
    responses=problems(
        *PROVIDER_ORDER,
        organization_suspended,
        organization_syncing,
        errors.bank_account_required,
        refused(S.CANCELLED, Step.ACCEPT, Actor.PROVIDER),
    ),
)
async def accept_order(
    order: ActiveProviderOrder,
    standing: ProviderStanding,
    principal: ProviderUser,
    session: SessionDep,
    settings: SettingsDep,
) -> OrderDetailOut:
    """接单: only with a receiving account on file (the enterprise pays into it). identity was
    asked before the order was locked (``ProviderStanding``), never while it is."""
    await service.accept(session, settings, order, principal, standing)
    return await _done(session, order, principal)


@router.post(
    "/orders/{order_id}/reject",
    response_model=OrderDetailOut,
    summary="服务机构拒绝接单",
    description="服务机构拒绝待接单的订单，须填写原因；订单取消，已预留的服务券额度随之释放（事件 orders.order_cancelled）。",
    response_description="拒绝接单后的订单详情",
    responses=problems(*PROVIDER_ORDER, refused(S.CANCELLED, Step.REJECT, Actor.PROVIDER)),
)
async def reject_order(
    order: ProviderOrder, principal: ProviderUser, body: RejectIn, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.REJECT, principal, Actor.PROVIDER, body.reason)
    return await _done(session, order, principal)


@router.post(
    "/orders/{order_id}/start-service",
    response_model=OrderDetailOut,
    summary="开始服务",
    description="服务机构对待服务的订单开始服务，订单进入服务中（事件 orders.service_started）；合同终止处理中不能开始。",
    response_description="开始服务后的订单详情",
    responses=problems(
        *PROVIDER_ORDER,
        refused(S.AWAITING_CONTRACT, Step.START_SERVICE, Actor.PROVIDER),
        refused(S.AWAITING_SERVICE, Step.START_SERVICE, Actor.PROVIDER, **TERMINATING),
    ),
)
async def start_service(
    order: ProviderOrder, principal: ProviderUser, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.START_SERVICE, principal, Actor.PROVIDER)
    return await _done(session, order, principal)


@router.post(
    "/orders/{order_id}/complete-service",
    response_model=OrderDetailOut,
    summary="服务完成",
    description=(
        "服务机构确认服务中的订单已完成服务（事件 orders.service_completed）：已付清时订单完成"
        "（orders.order_completed，服务券兑付随之开放），否则待企业支付尾款。合同终止处理中不能确认。"
    ),
    response_description="服务完成后的订单详情",
    responses=problems(
        *PROVIDER_ORDER,
        refused(S.AWAITING_SERVICE, Step.COMPLETE_SERVICE, Actor.PROVIDER),
        refused(S.IN_SERVICE, Step.COMPLETE_SERVICE, Actor.PROVIDER, **TERMINATING),
    ),
)
async def complete_service(
    order: ProviderOrder, principal: ProviderUser, session: SessionDep, settings: SettingsDep
) -> OrderDetailOut:
    await service.act(session, settings, order, Step.COMPLETE_SERVICE, principal, Actor.PROVIDER)
    return await _done(session, order, principal)


@router.post(
    "/orders/{order_id}/evaluation",
    status_code=201,
    response_model=EvaluationOut,
    summary="服务评价",
    description=(
        "下单企业在服务完成后评价一次：综合评分 1-5 星和 200 字以内的评价内容；已完成的订单变为评价完成，"
        "评分计入服务产品的评分（事件 orders.order_evaluated）。"
    ),
    response_description="企业的评价",
    responses=problems(
        *ENTERPRISE_ORDER,
        refused(S.IN_SERVICE, Step.EVALUATE, Actor.ENTERPRISE),
        refused(S.EVALUATED, Step.EVALUATE, Actor.ENTERPRISE),
    ),
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
