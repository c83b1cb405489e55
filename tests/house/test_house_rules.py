"""The house rules (CONTRIBUTING.md) as tests, each over the registry, the code or the built
apps, and each shown to catch the drift it is written against on a deliberately broken copy."""

from __future__ import annotations

import importlib
import inspect
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from common import registry
from common.app import SessionDep
from common.errors import Problem
from gateway import errors as gateway_errors
from gateway.config import Settings as GatewaySettings

from . import rules
from .problem_codes import all_modules, argument_sets, factories, problems_of

PACKAGES = {svc.package for svc in registry.SERVICES} | {"gateway", "web"}
# The launcher is the one composition root: it starts every process, so it imports them all.
COMPOSITION_ROOT = "gateway/launcher.py"


def _app(name: str) -> FastAPI:
    svc = registry.service(name)
    settings = importlib.import_module(f"{svc.package}.config").Settings(environment="development")
    return importlib.import_module(f"{svc.package}.main").create_app(settings)  # type: ignore[no-any-return]


def _broken_copy(name: str, tmp_path: Path) -> Path:
    copy = tmp_path / rules.package_dir(name).name
    shutil.copytree(rules.package_dir(name), copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


# --- no service imports another ------------------------------------------------------------------


@pytest.mark.parametrize("name", [*registry.NAMES, "web"])
def test_no_service_imports_another(name: str) -> None:
    assert rules.foreign_imports(rules.package_dir(name), PACKAGES) == []


def test_the_gateway_imports_no_service_but_in_its_launcher() -> None:
    found = rules.foreign_imports(rules.package_dir("gateway"), PACKAGES)
    assert [f for f in found if not f.startswith(f"{COMPOSITION_ROOT}:")] == []


def test_an_import_of_another_service_is_caught(tmp_path: Path) -> None:
    copy = _broken_copy("quota", tmp_path)
    (copy / "shortcut.py").write_text("from orders.models import Order\n")
    assert rules.foreign_imports(copy, PACKAGES) == ["quota/shortcut.py:1 imports orders.models"]


# --- problems: made in errors.py, one status per code ---------------------------------------------


@pytest.mark.parametrize("name", [*registry.NAMES, "gateway", "web"])
def test_problems_are_made_in_errors_py_alone(name: str) -> None:
    assert rules.problems_outside_errors(rules.package_dir(name)) == []


def test_common_makes_its_problems_in_errors_py_alone() -> None:
    assert rules.problems_outside_errors(rules.ROOT / "libs" / "common" / "common") == []


def test_a_problem_made_in_a_router_is_caught(tmp_path: Path) -> None:
    copy = _broken_copy("orders", tmp_path)
    api = copy / "api.py"
    api.write_text(api.read_text() + '\n\ndef _nope():\n    return Problem(409, "nope", "不行")\n')
    (found,) = rules.problems_outside_errors(copy)
    assert found.startswith("orders/api.py:") and found.endswith("builds a Problem")


def _fixed_codes(name: str, factory: Any) -> bool:
    """A factory whose codes are its own: not a generic constructor that takes the code or the
    status (unless its real arguments are known: problem_codes.argument_sets)."""
    generic = {"code", "status"} & set(inspect.signature(factory).parameters)
    return not generic or argument_sets(name) is not None


def _every_problem() -> Iterator[tuple[str, Problem]]:
    for name, factory in factories([*all_modules(), gateway_errors]):
        if _fixed_codes(name, factory):
            for problem in problems_of(name, factory):
                yield name, problem


def test_each_code_has_one_status_across_the_services() -> None:
    """A client handles a code one way: ``verification_expired`` was 410 from identity and 403
    from common.idv for the same "redo the face check"."""
    assert rules.statuses_by_code(_every_problem()) == []


def test_a_code_given_two_statuses_is_caught() -> None:
    found = rules.statuses_by_code(
        [("a.errors.late", Problem(410, "late", "")), ("b.errors.late", Problem(403, "late", ""))]
    )
    assert found == ["late: 403 in b.errors.late; 410 in a.errors.late"]


# --- transactions: one commit, in the router ------------------------------------------------------


@pytest.mark.parametrize("name", registry.NAMES)
def test_service_modules_commit_only_in_and_commit_functions(name: str) -> None:
    assert rules.commits_outside_and_commit(rules.package_dir(name)) == []


def test_a_commit_in_a_service_function_is_caught(tmp_path: Path) -> None:
    copy = _broken_copy("payments", tmp_path)
    target = sorted(rules.service_modules(copy))[0]
    target.write_text(
        target.read_text()
        + "\n\nasync def settle_now(session):\n    await session.commit()\n\n\n"
        + "async def settle_and_commit(session):\n    await session.commit()\n"
    )
    (found,) = rules.commits_outside_and_commit(copy)
    assert found.endswith("commits in settle_now")


# --- reads take the read-only session ------------------------------------------------------------

# GET routes on the read-write session, and why: each one writes (or is development only). A
# GET that reads through a dependency the writes share takes that dependency's read-only twin
# (deps.py: one loader taking the session, wrapped twice). The list may only shrink: a new GET
# on the write session fails here until it reads on ReadSessionDep or says why.
WRITES = "it writes: "
GETS_THAT_WRITE: dict[str, dict[str, str]] = {
    "identity": {
        "/api/v1/captcha": WRITES + "stores the captcha it issues",
        "/api/v1/identity-verifications/{verification_id}/return": WRITES + "records the vendor's result",
        "/api/v1/dev/captcha/{captcha_id}": "development only (the demo's captcha answers)",
        "/api/v1/dev/sms-codes/latest": "development only (the demo's SMS outbox)",
    },
    "catalog": {
        "/api/v1/products/{product_id}": WRITES + "counts the visit (访问次数)",
    },
    "demands": {
        "/api/v1/admin/demands/{demand_id}": WRITES
        + "a reviewer opening a pending demand makes it under_review (待处理 -> 待审核, audited) "
        "under the demand's lock",
    },
}


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_public_get_route_reads_on_the_read_only_session(name: str) -> None:
    app = _app(name)
    excused = GETS_THAT_WRITE.get(name, {})
    assert rules.gets_on_the_write_session(app, excused) == []
    still = {route.split(" ", 1)[1] for route in rules.gets_on_the_write_session(app, {})}
    assert set(excused) <= still, (
        f"{name}: now on the read-only session, take off the list: {set(excused) - still}"
    )


def test_a_get_route_on_the_write_session_is_caught() -> None:
    app = FastAPI()

    @app.get(f"{registry.API_PREFIX}/things")
    async def things(session: SessionDep) -> list[str]:
        return []

    @app.get(f"{registry.API_PREFIX}/noted")
    async def noted(session: SessionDep) -> list[str]:
        return []

    found = rules.gets_on_the_write_session(app, {f"{registry.API_PREFIX}/noted": "it counts a view"})
    assert found == [f"GET {registry.API_PREFIX}/things"]


# --- the registry is the one list -----------------------------------------------------------------


@pytest.mark.parametrize("name", registry.NAMES)
def test_each_consumer_handles_exactly_its_registry_rows_events(name: str) -> None:
    handled = _app(name).state.runtime.consumer.handlers
    assert rules.consumer_mismatch(name, handled, registry.service(name).consumes) == []


def test_a_handler_without_a_binding_and_a_binding_without_a_handler_are_caught() -> None:
    found = rules.consumer_mismatch(
        "quota", ["orders.order_submitted", "x.new"], ["orders.order_submitted", "y.old"]
    )
    assert found == [
        "quota handles x.new but its registry row does not bind it",
        "quota's registry row binds y.old but no handler applies it",
    ]


@pytest.mark.parametrize("name", registry.NAMES)
def test_a_service_answers_the_portal_figures_its_registry_row_names(name: str) -> None:
    paths = [route.path for route in rules.api_routes(_app(name).routes)]
    assert rules.stats_mismatch(name, paths, registry.service(name).stats) == []


def test_portal_figures_without_a_route_and_a_route_without_figures_are_caught() -> None:
    assert rules.stats_mismatch("a", ["/internal/stats"], ["products"]) == []
    assert rules.stats_mismatch("b", [], ["products"]) == [
        "b's registry row names portal figures but it has no /internal/stats"
    ]
    assert rules.stats_mismatch("c", ["/internal/stats"], []) == [
        "c answers /internal/stats but its registry row names no figure (nobody reads it)"
    ]


def test_the_gateway_has_a_url_for_every_registry_service() -> None:
    assert rules.unrouted_services(GatewaySettings.model_fields, registry.NAMES) == []
    assert rules.unrouted_services(GatewaySettings.model_fields, [*registry.NAMES, "newcomer"]) == [
        "the gateway has no newcomer_url"
    ]


def test_every_registry_service_is_named_for_its_users() -> None:
    """The name a user reads when it is unavailable (身份服务暂不可用，请稍后重试)."""
    assert [s.name for s in (*registry.SERVICES, registry.PORTAL) if not s.label] == []


# --- one layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_service_keeps_the_one_layout(name: str) -> None:
    assert rules.layout_drift(rules.package_dir(name)) == []


def _service_copy(name: str, tmp_path: Path) -> Path:
    """services/<name> (its package and tests) copied, for a rule that reads both."""
    copy = tmp_path / name
    ignore = shutil.ignore_patterns("__pycache__", "migrations")
    shutil.copytree(rules.package_dir(name).parent, copy, ignore=ignore)
    return copy / rules.package_dir(name).name


def test_a_layout_drift_is_caught(tmp_path: Path) -> None:
    package = _service_copy("payments", tmp_path)
    tests = package.parent / "tests"
    (package / "service.py").write_text("")
    (package / "refund_api.py").write_text("")
    (tests / "test_domain.py").write_text("")
    (tests / "domain").mkdir(exist_ok=True)
    (tests / "domain" / "test_payouts.py").write_text("")
    assert rules.layout_drift(package) == [
        "payments: service.py beside a service/ package",
        "payments/refund_api.py: a prefixed sibling of api",
        "payments: tests/test_domain.py for a domain/ package (tests/domain/test_<module>.py)",
        "payments: tests/domain/test_payouts.py names no domain module",
    ]
    orders = _service_copy("orders", tmp_path)
    (orders.parent / "tests" / "domain").mkdir()
    assert rules.layout_drift(orders) == ["orders: tests/domain/ for a flat domain.py (tests/test_domain.py)"]


# --- one way to say no ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*registry.NAMES, "gateway", "web"])
def test_rules_say_no_with_common_refusal_alone(name: str) -> None:
    assert rules.other_ways_to_say_no(rules.package_dir(name)) == []


def test_common_says_no_with_its_refusal_alone() -> None:
    assert rules.other_ways_to_say_no(rules.ROOT / "libs" / "common" / "common") == []


def test_a_rule_saying_no_its_own_way_is_caught(tmp_path: Path) -> None:
    copy = _broken_copy("catalog", tmp_path)
    before = set(rules.other_ways_to_say_no(copy))
    domain = copy / "domain" / "products.py"
    domain.write_text(
        domain.read_text()
        + "\n\nclass Overpriced(Exception):\n    pass\n"
        + "\n\ndef stock_problem(n: int) -> str | None:\n    return None if n else 'out_of_stock'\n"
        + "\n\ndef stock_refusal(n: int) -> str | None:\n    return None if n else 'out_of_stock'\n"
    )
    api = copy / "api" / "products.py"
    api.write_text(api.read_text() + "\n\nclass Refusal:\n    pass\n")
    found = sorted(line.split(" ", 1)[1] for line in set(rules.other_ways_to_say_no(copy)) - before)
    assert found == [
        "class Overpriced says no its own way",
        "declares its own Refusal",
        "stock_problem() says no its own way",
        "stock_refusal() says no its own way",
    ]
