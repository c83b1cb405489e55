"""CONTRIBUTING.md matches the code: its handler example is a real handler, copied from the
file it names (the first line of the block)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = GUIDE.index(f"## {title}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end > 0 else None]


def not_in_its_file(example: str) -> list[str]:
    """The example's functions (blank-line separated) that its file does not hold as they
    stand, indentation aside (a handler inside build_consumer reads at the top level)."""
    first, *code = example.splitlines()
    path = ROOT / first.removeprefix("# ").strip()
    if not path.is_file():
        return [f"no file {first}"]
    source = path.read_text(encoding="utf-8").splitlines()
    missing = []
    for piece in "\n".join(code).split("\n\n"):
        lines = piece.strip("\n").splitlines()
        windows = (source[i : i + len(lines)] for i in range(len(source) - len(lines) + 1))
        if not any(textwrap.dedent("\n".join(w)) == "\n".join(lines) for w in windows):
            missing.append(piece)
    return missing


def _handler_example() -> str:
    (example,) = re.findall(r"```python\n(.*?)```", _section("Writing a handler"), flags=re.S)
    return example


def test_the_handler_example_is_a_real_handler_copied_from_the_file_it_names() -> None:
    assert not_in_its_file(_handler_example()) == []


def test_a_handler_example_that_drifted_from_its_file_is_caught() -> None:
    drifted = _handler_example().replace('stream="service"', 'stream="order"')
    (missing,) = not_in_its_file(drifted)
    assert "async def service_started" in missing
    assert not_in_its_file("# services/payments/payments/nowhere.py\npass\n") == [
        "no file # services/payments/payments/nowhere.py"
    ]
