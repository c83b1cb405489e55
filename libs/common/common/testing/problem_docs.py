"""Every problem a route answers in the tests is documented in its app's OpenAPI document.

``common.errors`` counts each problem a route answers in ``voucher_problems_total``
(service, method, route template, status, code). While the tests run, this plugin keeps one
app per distinct set of routes that answered one; at the end of each process's session it
reads the counter's samples and looks each (route, status, code) up in that app's
``openapi()``. A code a route answers but does not document (the client team's generated code
would not know it) is listed at the end and fails the run; under pytest-xdist each worker
checks its own apps and the controller reports them all.

Only the platform's apps (a service of the registry, or the gateway) are checked, not an app a
test makes up for itself; only operations in the document (``/internal/`` and other routes left
out of it are not), and ``internal_error`` is not (a 500 is a defect, which the test shows itself). Switch it
off with ``-p no:common.testing.problem_docs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Scope

from common import errors, registry
from common.errors import PROBLEM_JSON, Problem
from common.metrics import PROBLEMS

CHECKED = frozenset({*registry.NAMES, "gateway"})
_UNCHECKED_CODES = frozenset({"internal_error"})
_WORKER_KEY = "undocumented_problems"

Operation = tuple[str, str, str]  # service, method, path template
# (service, method, route, status, code)
Answered = tuple[str, str, str, str, str]


def documented(doc: dict[str, Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str, str, str]]]:
    """The operations of an OpenAPI document, and the (method, path, status, code) it documents."""
    operations: set[tuple[str, str]] = set()
    codes: set[tuple[str, str, str, str]] = set()
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operations.add((method.upper(), path))
            for status, response in operation["responses"].items():
                examples = response.get("content", {}).get(PROBLEM_JSON, {}).get("examples", {})
                for code in examples:
                    codes.add((method.upper(), path, str(status), code))
    return operations, codes


def answered() -> Iterator[Answered]:
    """The (service, method, route, status, code) the counter has seen in this process."""
    for metric in PROBLEMS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.value > 0:
                labels = sample.labels
                yield (labels["service"], labels["method"], labels["route"], labels["status"], labels["code"])


def _signature(app: FastAPI) -> tuple[str, ...]:
    return tuple(
        sorted(f"{m} {r.path_format}" for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ())
    )


class ProblemDocs:
    """Keeps the apps that answered problems and checks them at the end of the session."""

    def __init__(self) -> None:
        self.apps: dict[tuple[str, ...], FastAPI] = {}  # one app per distinct set of routes
        self.route_app: dict[Operation, tuple[str, ...]] = {}
        self.found: list[str] = []

    def observe(self, scope: Scope, problem: Problem) -> None:
        app = scope.get("app")
        if not isinstance(app, FastAPI):
            return
        service = getattr(getattr(app.state, "settings", None), "service_name", None)
        if service not in CHECKED:  # an app a test made up for itself, not the platform's
            return
        key = (service, scope.get("method", ""), errors.route_template(scope))
        if key in self.route_app:
            return
        signature = getattr(app.state, "problem_docs_signature", None)
        if signature is None:
            signature = app.state.problem_docs_signature = _signature(app)
        self.apps.setdefault(signature, app)
        self.route_app[key] = signature

    def undocumented(self) -> list[str]:
        docs: dict[tuple[str, ...], tuple[set[tuple[str, str]], set[tuple[str, str, str, str]]]] = {}
        found = []
        for service, method, route, status, code in sorted(set(answered())):
            signature = self.route_app.get((service, method, route))
            if signature is None or code in _UNCHECKED_CODES:
                continue
            if signature not in docs:
                docs[signature] = documented(self.apps[signature].openapi())
            operations, codes = docs[signature]
            if (method, route) in operations and (method, route, status, code) not in codes:
                found.append(
                    f"{service}: {method} {route} answers {status} {code}, not in its OpenAPI responses"
                )
        return found

    # --- pytest hooks -------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.found.extend(self.undocumented())
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput[_WORKER_KEY] = self.found
        elif self.found and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.found.extend(getattr(node, "workeroutput", {}).get(_WORKER_KEY, ()))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.found:
            return
        tr = terminalreporter
        tr.section("UNDOCUMENTED PROBLEMS (common.testing.problem_docs)", sep="!", red=True, bold=True)
        for line in sorted(set(self.found)):
            tr.line(line, red=True)
        tr.line("Add them to the route's responses=problems(...) (common.openapi).", red=True)


def pytest_configure(config: pytest.Config) -> None:
    checker = ProblemDocs()
    config.pluginmanager.register(checker, "problem-docs-checker")
    errors.PROBLEM_OBSERVERS.append(checker.observe)
    config.add_cleanup(lambda: errors.PROBLEM_OBSERVERS.remove(checker.observe))
