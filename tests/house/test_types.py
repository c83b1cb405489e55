"""mypy holds every package of the house, checked together (so that a service's use of
common's API is checked against it, which a package checked alone, seeing common as
untyped, would miss)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import registry

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "libs/common/common",
    "gateway/gateway",
    "web/web",
    "tools/invariants/invariants",
    *(f"services/{svc.name}/{svc.package}" for svc in registry.SERVICES),
]


def test_every_package_type_checks(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
