"""deploy/README.md's Operations section: a runbook for each task an operator does by hand
(issue 17 §10), naming only commands the tools have and linking only to sections that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_monitoring import github_anchor

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


OPERATIONS = section("Operations")


def test_the_operations_section_has_a_runbook_for_each_task() -> None:
    runbooks = re.findall(r"^### (.+)$", OPERATIONS, flags=re.M)
    assert runbooks == [
        "Scale a service",
        "Change a setting or a Secret",
        "Replay, export or discard dead letters",
        "Run voucher-invariants and read its findings",
        "Find a stuck order",
        "Rotate the JWT signing key",
        "Rotate the field-encryption and seal keys",
        "Restore from backup",
    ]


def test_every_link_of_the_readme_leads_to_one_of_its_sections() -> None:
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", README, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links, "the runbooks link to the sections they rely on"
    assert links - anchors == set()


COMMANDS = sorted(
    set(re.findall(r"\b(voucher-(?:dlq|identity|contracts|orders)) ([a-z][a-z-]+)\b", OPERATIONS))
)


@pytest.mark.parametrize(("tool", "command"), COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_a_runbook_names_exists(tool: str, command: str) -> None:
    script = Path(sys.executable).with_name(tool)
    done = subprocess.run([str(script), command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{tool} {command}: {done.stderr}"


def test_the_runbooks_name_the_key_rotation_and_dlq_commands() -> None:
    assert {
        ("voucher-dlq", "export"),
        ("voucher-dlq", "discard"),
        ("voucher-dlq", "replay"),
        ("voucher-identity", "reencrypt"),
        ("voucher-identity", "public-jwt-key"),
        ("voucher-contracts", "reencrypt-seal-keys"),
        ("voucher-orders", "show"),
    } <= set(COMMANDS)
