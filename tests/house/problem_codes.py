"""Every problem factory of the platform and the problems it can give: shared by the house tests
of problems (test_problems: a 422 names its fields) and of the API description (test_openapi:
every code a document lists is one the service really has)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from common import auth, files, idempotency, idv, internal, orgs, registry, sanitize
from common import errors as common_errors
from common.errors import Problem
from common.rules import Refusal

COMMON_MODULES: tuple[ModuleType, ...] = (
    common_errors,
    files,
    idempotency,
    sanitize,
    auth,
    orgs,
    internal,
    idv,
)


def all_modules() -> Iterator[ModuleType]:
    for svc in registry.SERVICES:
        yield importlib.import_module(f"{svc.package}.errors")
    yield from COMMON_MODULES


def service_modules(service: str) -> list[ModuleType]:
    """``service``'s errors module ("gateway" for the gateway's) and common's problems."""
    package = "gateway" if service == "gateway" else registry.BY_NAME[service].package
    return [importlib.import_module(f"{package}.errors"), *COMMON_MODULES]


def argument_sets(name: str) -> list[tuple[Any, ...]] | None:
    """Every argument a factory that takes a code, a state or a refusal can be given (the
    sampler cannot guess those); None for the others."""
    from datetime import UTC, date, datetime

    from demands import errors as demand_errors
    from fastapi.exceptions import RequestValidationError

    from catalog import errors as catalog_errors
    from contracts import errors as contract_errors
    from contracts.domain import contracts as contract_domain
    from identity.domain import auth as identity_auth
    from identity.errors import _BY_CODE as identity_refusals
    from orders import domain as order_domain
    from payments import errors as payment_errors
    from quota import errors as quota_errors

    states, actions = list(contract_domain.State), list(contract_domain.Action)
    missing = {"loc": ("body", "name"), "msg": "Field required", "type": "missing"}
    malformed = {"loc": ("body", 1), "msg": "JSON decode error", "type": "json_invalid"}
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    limits = identity_auth.SmsLimits(60, 10, 50)
    sms_refusals = [
        identity_auth.sms_refusal(history, limits, now)
        for history in (
            identity_auth.SmsHistory(now, 0, 0),
            identity_auth.SmsHistory(None, 10, 0),
            identity_auth.SmsHistory(None, 0, 50),
        )
    ]
    cases: dict[str, list[tuple[Any, ...]]] = {
        "quota.errors.special_request": [(c,) for c in quota_errors._SPECIAL_TEXTS],
        "quota.errors.approval_amount": [(c,) for c in quota_errors._APPROVAL_TEXTS],
        "quota.errors.from_refusal": [
            *((Refusal(c, field=field),) for c, (field, _) in quota_errors._SPECIAL_TEXTS.items()),
            *((Refusal(c, field="approved_fen"),) for c in quota_errors._APPROVAL_TEXTS),
        ],
        "quota.errors.voucher_window_closed": [(date(2026, 12, 31),)],
        "catalog.errors.from_refusal": [
            (Refusal(c, status="listed", action="submit"),)
            for c in ["product_status_conflict", *catalog_errors._BY_CODE]
        ],
        "orders.errors.from_refusal": [
            (Refusal(code, state=state, step=step),)
            for state in order_domain.Status
            for step in order_domain.Step
            for code in (
                "order_state_conflict",
                "cancellation_pending",
                "order_already_paid",
                "termination_pending",
                "already_evaluated",
                "forbidden_actor",
            )
        ],
        "contracts.errors.wrong_party": [(a,) for a in actions],
        "contracts.errors.contract_state": [(s, a) for s in states for a in actions],
        "contracts.errors.from_refusal": [
            *[(Refusal("contract_state", state=s, action=a),) for s in states for a in actions],
            *[(Refusal(c, limit=10),) for c in contract_errors._BY_CODE if c != "contract_state"],
        ],
        "contracts.errors.contract_immutable": [(s,) for s in states],
        "payments.errors.from_refusal": [
            (Refusal(c, room_fen=100),) for c in [*payment_errors._BY_CODE, "remittance_exceeds_outstanding"]
        ],
        "demands.errors.from_refusal": [(Refusal(c),) for c in demand_errors._BY_CODE],
        "identity.errors.sms_limited": [
            (r.code, r.detail, r.retry_after) for r in sms_refusals if r is not None
        ],
        "identity.errors.from_refusal": [
            (Refusal(c, detail="x", field="x", retry_after=1),) for c in identity_refusals
        ],
        "common.errors.validation_problem": [
            (RequestValidationError([missing]),),
            (RequestValidationError([malformed]),),
        ],
        "common.errors.capability_required": [("enterprise",), ("provider",)],
        "common.errors.file_problem": [
            (p.errors[0]["field"], p.code, p.errors[0]["message"]) for p in files.check_problems("file_ids")
        ],  # type: ignore[index]
    }
    return cases.get(name)


def call(factory: Callable[..., Any]) -> Any:
    """Call a factory with a sample for each required argument (strings, numbers, lists)."""
    args: list[Any] = []
    for p in inspect.signature(factory).parameters.values():
        if p.default is not inspect.Parameter.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        ann = str(p.annotation)
        if "list" in ann or "Sequence" in ann or "Iterable" in ann:
            if "dict" in ann:
                args.append([{"field": "x", "message": "x"}])
            else:
                args.append([("field", "标签", "\u202e")] if "tuple" in ann else ["x"])
        elif "int" in ann:
            args.append(1)
        else:
            args.append("x")
    return factory(*args)


def factories(modules: Iterable[ModuleType] | None = None) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(module.name, factory) for every public function returning a Problem."""
    for module in all_modules() if modules is None else modules:
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_"):
                if inspect.signature(fn).return_annotation in (Problem, "Problem"):
                    yield f"{module.__name__}.{name}", fn


def problems_of(name: str, factory: Callable[..., Any]) -> list[Problem]:
    """What ``factory`` gives: with each known argument set, else once with samples."""
    arguments = argument_sets(name)
    return [factory(*args) for args in arguments] if arguments is not None else [call(factory)]


def codes(modules: Iterable[ModuleType]) -> set[tuple[int, str]]:
    """The (status, code) pairs the factories of ``modules`` can give."""
    return {(p.status, p.code) for name, fn in factories(modules) for p in problems_of(name, fn)}
