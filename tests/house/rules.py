"""The house rules as functions: each takes what it checks (a package's folder, a built app,
problem factories) and returns the places that break the rule, one line each (empty: kept).

tests/house/test_house_rules.py applies them to the real code, and to a deliberately broken
copy of it, to show that each rule would catch the drift it is written against."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from common import registry
from common.app import get_read_session, get_session
from common.errors import Problem

ROOT = Path(__file__).resolve().parents[2]


def package_dir(name: str) -> Path:
    """A registry service's package folder (services/<name>/<package>); the gateway's, the portal's."""
    if name in ("gateway", "web"):
        return ROOT / name / name
    svc = registry.service(name)
    return ROOT / "services" / svc.name / svc.package


def modules(package: Path) -> Iterator[tuple[Path, ast.Module]]:
    """Every module of a package but its alembic revisions (generated)."""
    for path in sorted(package.rglob("*.py")):
        if "migrations" not in path.relative_to(package).parts:
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _where(package: Path, path: Path, node: ast.AST) -> str:
    return f"{package.name}/{path.relative_to(package)}:{getattr(node, 'lineno', 0)}"


# --- no service imports another -----------------------------------------------------------------


def foreign_imports(package: Path, others: Iterable[str]) -> list[str]:
    """Imports of another service's package (or the gateway's, the portal's): services talk
    through events and /internal/ reads, never through each other's code."""
    foreign = set(others) - {package.name}
    found = []
    for path, tree in modules(package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".", 1)[0] in foreign:
                    found.append(f"{_where(package, path, node)} imports {name}")
    return found


# --- problems are made in errors.py alone ---------------------------------------------------------


def problems_outside_errors(package: Path) -> list[str]:
    """``Problem(...)`` built anywhere but the package's errors.py: one factory per stable code,
    one place to read them all (and the OpenAPI descriptions list them from there)."""
    found = []
    for path, tree in modules(package):
        if path.name == "errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "Problem":
                    found.append(f"{_where(package, path, node)} builds a Problem")
    return found


def statuses_by_code(problems: Iterable[tuple[str, Problem]]) -> list[str]:
    """Codes answered with more than one status (where, a code is one meaning for a client)."""
    seen: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for where, problem in problems:
        seen[problem.code][problem.status].add(where)
    return [
        f"{code}: "
        + "; ".join(f"{status} in {', '.join(sorted(places))}" for status, places in sorted(by.items()))
        for code, by in sorted(seen.items())
        if len(by) > 1
    ]


# --- a service module never commits but in *_and_commit ------------------------------------------


def service_modules(package: Path) -> list[Path]:
    single = package / "service.py"
    return [single] if single.exists() else sorted((package / "service").glob("*.py"))


def commits_outside_and_commit(package: Path) -> list[str]:
    """``.commit()`` in a service module, in a function not named ``*_and_commit``: the
    router commits once (CONTRIBUTING.md, Transactions); the exceptions say so in their name."""
    found = []
    for path in service_modules(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node: ast.AST, function: str | None, path: Path = path) -> None:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                function = node.name if function is None else function  # the outermost decides
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "commit"
                and not (function or "").endswith("_and_commit")
            ):
                found.append(f"{_where(package, path, node)} commits in {function or 'the module'}")
            for child in ast.iter_child_nodes(node):
                visit(child, function)

        visit(tree, None)
    return found


# --- one layout --------------------------------------------------------------------------------

LAYERS = ("api", "schemas", "domain", "service")


def layout_drift(package: Path) -> list[str]:
    """CONTRIBUTING.md, One service, one layout: a layer is a module or a package of modules
    named after resources, never both and never a prefixed sibling (``org_api.py``); the pure
    rules' tests mirror the domain: ``tests/test_domain.py`` beside a flat ``domain.py``,
    ``tests/domain/test_<module>.py`` for each tested module of a ``domain/`` package."""
    found = []
    for layer in LAYERS:
        if (package / f"{layer}.py").exists() and (package / layer).is_dir():
            found.append(f"{package.name}: {layer}.py beside a {layer}/ package")
    for path in sorted(package.glob("*.py")):
        stem = path.stem
        for layer in LAYERS:
            if stem != layer and (stem.startswith(f"{layer}_") or stem.endswith(f"_{layer}")):
                found.append(f"{package.name}/{path.name}: a prefixed sibling of {layer}")
    tests = package.parent / "tests"
    domain = package / "domain"
    if domain.is_dir():
        domain_modules = {p.stem for p in domain.glob("*.py") if p.stem != "__init__"}
        if (tests / "test_domain.py").exists():
            found.append(
                f"{package.name}: tests/test_domain.py for a domain/ package (tests/domain/test_<module>.py)"
            )
        for test in sorted((tests / "domain").glob("test_*.py")):
            if test.stem.removeprefix("test_") not in domain_modules:
                found.append(f"{package.name}: tests/domain/{test.name} names no domain module")
    elif (tests / "domain").is_dir():
        found.append(f"{package.name}: tests/domain/ for a flat domain.py (tests/test_domain.py)")
    return found


# --- one way to say no -------------------------------------------------------------------------


def other_ways_to_say_no(package: Path) -> list[str]:
    """A rule says no with ``common.rules.Refusal`` and nothing else (one vocabulary): no
        exception class of a package's own named like a refusal, no exception class in its pure
        domain, and no ``*_problem`` or ``*_refusal`` function answering a code or a text (for ``None``:
    yes)."""
    found = []
    for path, tree in modules(package):
        in_domain = "domain" in path.relative_to(package).with_suffix("").parts
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                exception = any(b.endswith(("Exception", "Error")) for b in bases)
                if exception and (in_domain or "refus" in node.name.lower()) and node.name != "Refusal":
                    found.append(f"{_where(package, path, node)} class {node.name} says no its own way")
                elif node.name == "Refusal" and path.name != "rules.py":
                    found.append(f"{_where(package, path, node)} declares its own Refusal")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
                returns = ast.unparse(node.returns)
                if (node.name.endswith("_problem") and "| None" in returns) or (
                    node.name.endswith("_refusal") and returns.startswith("str")
                ):
                    found.append(f"{_where(package, path, node)} {node.name}() says no its own way")
    return found


# --- the apps -----------------------------------------------------------------------------------


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as routers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from api_routes(inner.routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def gets_on_the_write_session(app: FastAPI, allowed: Mapping[str, str]) -> list[str]:
    """Public GET routes that take the read-write session: a read takes the read-only one
    (two round trips fewer, and it can never write), unless ``allowed`` says why not."""
    found = []
    for route in api_routes(app.routes):
        if "GET" not in route.methods or not route.path.startswith(registry.API_PREFIX + "/"):
            continue
        calls = set(_calls(route.dependant))
        if get_session in calls and get_read_session not in calls and route.path not in allowed:
            found.append(f"GET {route.path}")
    return found


def consumer_mismatch(name: str, handled: Iterable[str], consumes: Iterable[str]) -> list[str]:
    """The events a service's consumer handles against its registry row (its queue's bindings):
    a handler for an unbound type never runs; a bound type without a handler is parked."""
    handled, consumes = set(handled), set(consumes)
    return [
        f"{name} handles {t} but its registry row does not bind it" for t in sorted(handled - consumes)
    ] + [f"{name}'s registry row binds {t} but no handler applies it" for t in sorted(consumes - handled)]


def stats_mismatch(name: str, paths: Iterable[str], figures: Iterable[str]) -> list[str]:
    """A service answers ``GET /internal/stats`` exactly when its registry row names portal
    figures: the gateway asks only those, so another one's route is never read."""
    serves, named = "/internal/stats" in set(paths), bool(tuple(figures))
    if named and not serves:
        return [f"{name}'s registry row names portal figures but it has no /internal/stats"]
    if serves and not named:
        return [f"{name} answers /internal/stats but its registry row names no figure (nobody reads it)"]
    return []


def unrouted_services(urls: Iterable[str], names: Iterable[str]) -> list[str]:
    """Registry services the gateway has no URL setting for (it could never route them)."""
    return [f"the gateway has no {n}_url" for n in names if f"{n}_url" not in set(urls)]
