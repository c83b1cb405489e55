"""The invariants of DESIGN.md ("Invariants that must hold at every quiescent point"), checked
over every service's database by the ``voucher-invariants`` command.

- :mod:`invariants.rows`: the rows checked (plain dataclasses, built from any mapping);
- :mod:`invariants.checks`: pure check functions over a :class:`Snapshot` of rows;
- :mod:`invariants.readers`: one read-only asyncpg reader per service database;
- :mod:`invariants.cli`: the command (``voucher-invariants``).
"""

from invariants.checks import CHECKS, Report, Violation, check_all
from invariants.rows import Snapshot

__all__ = ["CHECKS", "Report", "Snapshot", "Violation", "check_all"]
