"""deploy/Dockerfile, deploy/entrypoint.sh and .dockerignore: one image recipe for every
service, run as non-root, built from the lock file. Checked by reading them (there is no
Docker engine here) and by running the entrypoint with a stand-in uvicorn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs (before the first FROM) and the stages, continuation lines joined."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    assert not buffer, "a continuation line at the end of the Dockerfile"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), flags=re.IGNORECASE)
            assert match, line
            stages.append(Stage(name=match.group(2) or str(len(stages)), base=match.group(1)))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM: {line}"
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile(root: Path) -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile((root / "deploy/Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    return dockerfile[1][-1]


@pytest.fixture(scope="module")
def builder(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    stages = [s for s in dockerfile[1] if any("uv sync" in args for args in s.all("RUN"))]
    assert len(stages) == 1, "one stage installs the service with uv"
    return stages[0]


def test_every_stage_is_python_3_11_slim(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2, "multi-stage: the runtime image carries no build tools"
    for stage in stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], stage.base)
        assert base == "python:3.11-slim", f"stage {stage.name}: {base}"


def test_the_image_runs_as_a_non_root_user(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, f"USER {users[-1]}: a numeric non-root uid (10001)"
    assert any("--uid 10001" in run for run in runtime.all("RUN")), "the user 10001 is created"
    # Nothing after USER switches back to root.
    last_user = max(i for i, (kw, _) in enumerate(runtime.instructions) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in runtime.instructions[last_user:])


def test_the_build_takes_service_and_port(builder: Stage, runtime: Stage) -> None:
    assert "SERVICE" in builder.all("ARG")
    runtime_args = [a.partition("=")[0] for a in runtime.all("ARG")]
    assert {"SERVICE", "PORT"} <= set(runtime_args)
    env = " ".join(runtime.all("ENV"))
    assert "SERVICE=${SERVICE}" in env and "PORT=${PORT}" in env, "the entrypoint reads both at run time"
    assert runtime.all("EXPOSE") == ["${PORT}"]


def test_uv_is_pinned_and_syncs_one_member_from_the_lock(builder: Stage) -> None:
    runs = builder.all("RUN")
    defaults = dict(arg.partition("=")[::2] for arg in builder.all("ARG"))
    pinned = [re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1)) or m.group(0), run) for run in runs]
    assert any(re.search(r"pip install .*\buv==\d+\.\d+\.\d+\b", run) for run in pinned), (
        "pip install uv==X.Y.Z"
    )
    syncs = [run for run in runs if "uv sync" in run]
    assert len(syncs) == 2, "dependencies first (cached layer), then the workspace packages"
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", '--package "voucher-${SERVICE}"'):
            assert flag in sync, f"{flag} missing in: {sync}"
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1], "the runtime stage copies the venv alone"


def test_lock_and_manifests_are_copied_before_the_sources(
    dockerfile: tuple[dict[str, str], list[Stage]], builder: Stage, root: Path
) -> None:
    order = [(kw, args) for kw, args in builder.instructions if kw in ("COPY", "RUN")]
    first_sync = next(i for i, (kw, args) in enumerate(order) if kw == "RUN" and "uv sync" in args)
    copies_before = [args for kw, args in order[:first_sync] if kw == "COPY"]
    assert copies_before and all("--from=" in c for c in copies_before), (
        "only the manifests before the first sync"
    )
    assert any(args.startswith(". ") or args == ". ." for kw, args in order[first_sync:] if kw == "COPY")
    # The manifests stage collects uv.lock and every member's pyproject.toml.
    stages = {s.name: s for s in dockerfile[1]}
    source = re.search(r"--from=(\S+)", copies_before[0])
    assert source and source.group(1) in stages
    collect = " ".join(stages[source.group(1)].all("RUN"))
    assert "uv.lock" in collect and "pyproject.toml" in collect
    members = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    for member in members:
        top = member.split("/")[0]
        assert top in collect.split(), f"workspace member {member} is not collected"


def test_healthcheck_is_python_on_healthz(runtime: Stage) -> None:
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    assert "python -c" in checks[0] and "/healthz" in checks[0] and "curl" not in checks[0]


class _Live(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_healthcheck_command_works(runtime: Stage) -> None:
    command = runtime.all("HEALTHCHECK")[0].split(" CMD ", 1)[1]
    code = re.fullmatch(r'python -c "(.*)"', command.strip())
    assert code, command
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PORT": str(server.server_address[1])}
        assert subprocess.run([sys.executable, "-c", code.group(1)], env=env, timeout=30).returncode == 0
        server.shutdown()
        server.server_close()
        assert subprocess.run([sys.executable, "-c", code.group(1)], env=env, timeout=30).returncode != 0
    finally:
        server.server_close()


def test_cmd_is_the_entrypoint_script(runtime: Stage) -> None:
    assert runtime.all("CMD") == ['["/usr/local/bin/voucher-entrypoint"]']
    assert any(
        "deploy/entrypoint.sh /usr/local/bin/voucher-entrypoint" in c and "--chmod=0755" in c
        for c in runtime.all("COPY")
    )
    assert not runtime.all("ENTRYPOINT"), "CMD alone: `docker run IMAGE voucher-dlq ...` replaces it"


# --- the workspace packages the image maps SERVICE to ----------------------------------------


def test_each_service_is_the_workspace_package_voucher_service(
    root: Path, services_in_workspace: list[str], portal: str
) -> None:
    for name, path in [
        *((s, root / "services" / s) for s in services_in_workspace),
        ("gateway", root / "gateway"),
        (portal, root / portal),
    ]:
        project = tomllib.loads((path / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"voucher-{name}"
        packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
        assert packages == [name], f"{name}: import package {name} (uvicorn {name}.main:create_app)"


def test_the_portals_pages_and_static_files_are_in_its_package(root: Path, portal: str) -> None:
    """The image installs the portal as a wheel (uv sync --no-editable): hatchling puts every
    file below the package directory in it, so its templates and static files must be there
    (not beside it), and no build setting may leave them out."""
    project = tomllib.loads((root / portal / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert not {"only-include", "exclude", "only-packages"} & wheel.keys(), wheel
    package = root / portal / portal
    for folder, pattern in (("templates", "*.html"), ("static", "*.css")):
        assert any((package / folder).rglob(pattern)), f"{portal}/{portal}/{folder} holds no {pattern}"


# --- the entrypoint ------------------------------------------------------------------------------


def _run_entrypoint(
    root: Path, tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    uvicorn = fake / "uvicorn"
    uvicorn.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    uvicorn.chmod(0o755)
    return subprocess.run(
        ["sh", str(root / "deploy/entrypoint.sh"), *args],
        env={"PATH": f"{fake}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("service", ["identity", "gateway", "web"])
def test_entrypoint_starts_uvicorn_for_the_service(
    root: Path, tmp_path: Path, ports: dict[str, int], service: str
) -> None:
    port = str(ports[service])
    result = _run_entrypoint(root, tmp_path, {"SERVICE": service, "PORT": port}, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "--factory",
        f"{service}.main:create_app",
        "--host",
        "0.0.0.0",
        "--port",
        port,
        "--no-proxy-headers",
        "--no-server-header",
        "--http",
        "common.serving:ProblemHttpToolsProtocol",
        "--timeout-graceful-shutdown",
        "10",
        "--workers",
        "2",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SERVICE": "billing", "PORT": "8009"}, "unknown SERVICE"),
        ({"PORT": "8001"}, "SERVICE is not set"),
        ({"SERVICE": "identity"}, "PORT is not set"),
    ],
)
def test_entrypoint_refuses_what_it_cannot_start(
    root: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = _run_entrypoint(root, tmp_path, env)
    assert result.returncode != 0 and message in result.stderr
    assert not result.stdout


def test_entrypoint_knows_every_service(
    root: Path, services_in_workspace: list[str], ports: dict[str, int]
) -> None:
    script = (root / "deploy/entrypoint.sh").read_text()
    case = re.search(r"^\s*(gateway \|[^)]*)\)", script, flags=re.MULTILINE)
    assert case, "the case of known services"
    known = {name.strip() for name in case.group(1).split("|")}
    assert known == set(ports) and set(services_in_workspace) <= known
    assert os.access(root / "deploy/entrypoint.sh", os.X_OK)
    assert subprocess.run(["sh", "-n", str(root / "deploy/entrypoint.sh")], check=False).returncode == 0


# --- .dockerignore -------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `**/` any directories, `*` and `?` within one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:[^/]+/)*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _excluded(patterns: list[str], path: str) -> bool:
    """Docker's rule: a pattern that matches a path or one of its parent directories
    excludes it; the last matching pattern wins, and `!` re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern(pattern.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest(root: Path) -> None:
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "libs/common/pyproject.toml",
        "libs/common/common/bus/rabbitmq.py",
        "services/identity/pyproject.toml",
        "services/identity/identity/__init__.py",
        "gateway/gateway/__init__.py",
        "web/pyproject.toml",
        "web/web/main.py",
        "web/web/templates/layout.html",  # the portal's pages and static files
        "web/web/static/portal.css",
        "deploy/entrypoint.sh",
        "services/contracts/contracts/fonts/NotoSansSC-Regular.ttf",  # the contract PDF's font
    ):
        assert not _excluded(patterns, needed), f"{needed} must be in the build context"
    for unwanted in (
        ".venv/bin/python",
        "services/identity/.venv/x",
        ".git/HEAD",
        "data/pg/PG_VERSION",
        "libs/common/common/__pycache__/app.cpython-311.pyc",
        ".pytest_cache/v",
        ".tools/x",
        "deploy/env/secrets.env",
        "deploy/env/identity.secrets.env",
        "deploy/env/production.env",
        "tests/deploy/test_compose.py",
        "services/identity/tests/test_x.py",
        "web/tests/test_x.py",
        "deploy/env/web.secrets.env",
        ".env",
    ):
        assert _excluded(patterns, unwanted), f"{unwanted} must not be in the build context"
