"""Reference data of 支付认证: administrative regions (开户所在地) and bank branches (开户支行).

Pure rules over data already loaded (``identity.service.reference`` loads the files that ship
in ``identity/refdata/`` once): keyword search on Chinese names and the checks a bank account
must pass. No I/O here.

Regions are GB/T 2260 codes, two levels: provinces (``450000`` 广西壮族自治区) and
prefecture-level cities (``450100`` 南宁市). A municipality (北京市, 天津市, 上海市, 重庆市)
has no city level below it and is a region of its own; the county-level cities a province
governs directly (济源市, 仙桃市, 五指山市, 石河子市, ...) stand at the city level. An account's
开户所在地 is a city or a municipality, written as its full name ("广西壮族自治区南宁市").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

_SPACES = re.compile(r"\s+")


def keyword(text: str) -> str:
    """A text as a search compares it: full-width and half-width alike (NFKC), case folded,
    without whitespace ("广西 南宁" and "广西南宁" are one place)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).casefold()


def terms(query: str | None) -> list[str]:
    """The words of a query: whitespace separates them, and each must match."""
    if not query:
        return []
    return [keyword(t) for t in _SPACES.split(unicodedata.normalize("NFKC", query)) if t.strip()]


def matches(words: list[str], *texts: str) -> bool:
    """Every word is found in one of the texts (already :func:`keyword`-ed)."""
    return all(any(w in t for t in texts) for w in words)


@dataclass(frozen=True)
class Region:
    code: str  # GB/T 2260, six digits
    name: str  # 南宁市
    parent: str | None  # the province's code, None for a province
    full_name: str  # 广西壮族自治区南宁市
    selectable: bool  # a city, or a municipality: what 开户所在地 may be

    @property
    def level(self) -> int:
        return 1 if self.parent is None else 2


@dataclass(frozen=True)
class Branch:
    name: str  # 中国工商银行南宁分行营业部
    bank: str  # 中国工商银行
    bank_code: str  # 行别代码, three digits: 102 ICBC, 105 CCB, 313 city commercial banks, ...
    region: str  # the city's (or municipality's) code
    cnaps_code: str | None  # 12-digit 联行号 where the data carries it


@dataclass
class Reference:
    """Regions and branches, indexed once."""

    regions: tuple[Region, ...]
    branches: tuple[Branch, ...]
    region_by_code: dict[str, Region] = field(init=False)
    region_by_name: dict[str, Region] = field(init=False)
    branch_by_name: dict[str, Branch] = field(init=False)
    _region_keys: dict[str, tuple[str, str]] = field(init=False, repr=False)
    _branch_keys: dict[str, tuple[str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.region_by_code = {r.code: r for r in self.regions}
        self.region_by_name = {keyword(r.full_name): r for r in self.regions}
        self.branch_by_name = {keyword(b.name): b for b in self.branches}
        self._region_keys = {r.code: (keyword(r.name), keyword(r.full_name)) for r in self.regions}
        self._branch_keys = {b.name: (keyword(b.name), keyword(b.bank)) for b in self.branches}

    @property
    def branches_complete(self) -> bool:
        """Whether the branches are the CNAPS directory (every row has its 联行号) rather than
        the curated list that ships (see refdata/README.md)."""
        return bool(self.branches) and all(b.cnaps_code for b in self.branches)

    @property
    def banks(self) -> list[str]:
        """Each bank once, in the order of the data."""
        return list(dict.fromkeys(b.bank for b in self.branches))

    def region(self, value: str | None) -> Region | None:
        """A region by its code or its full name ("广西壮族自治区南宁市", spaces ignored)."""
        if not value:
            return None
        key = keyword(value)
        return self.region_by_code.get(key) or self.region_by_name.get(key)

    def branch(self, name: str | None) -> Branch | None:
        return self.branch_by_name.get(keyword(name)) if name else None

    def search_regions(self, query: str | None = None, parent: str | None = None) -> list[Region]:
        """Regions whose name or full name holds every word of the query; ``parent`` (a code)
        keeps its cities, and ``parent=""`` the provinces. In code order."""
        words = terms(query)
        return [
            r
            for r in self.regions
            if (parent is None or (r.parent or "") == parent) and matches(words, *self._region_keys[r.code])
        ]

    def search_branches(
        self, query: str | None = None, region: Region | None = None, bank: str | None = None
    ) -> list[Branch]:
        """Branches whose name or bank holds every word of the query, in ``region`` (a city,
        or a province and its cities) and of a bank whose name holds ``bank``."""
        words = terms(query)
        bank_words = terms(bank)
        codes = None if region is None else self.codes_within(region)
        return [
            b
            for b in self.branches
            if (codes is None or b.region in codes)
            and matches(words, *self._branch_keys[b.name])
            and matches(bank_words, self._branch_keys[b.name][1])
        ]

    def codes_within(self, region: Region) -> set[str]:
        if region.parent is not None:
            return {region.code}
        return {region.code, *(r.code for r in self.regions if r.parent == region.code)}


def build_reference(regions: Iterable[tuple[str, str, str | None]], branches: Iterable[Branch]) -> Reference:
    """The reference from rows (code, name, parent code): full names and which regions an
    account may name (a province without cities below it is a municipality)."""
    rows = list(regions)
    names = {code: name for code, name, _ in rows}
    has_children = {parent for _, _, parent in rows if parent}
    built = tuple(
        Region(
            code=code,
            name=name,
            parent=parent or None,
            full_name=(names[parent] + name) if parent else name,
            selectable=bool(parent) or code not in has_children,
        )
        for code, name, parent in rows
    )
    return Reference(built, tuple(branches))


# --- the bank account's checks -------------------------------------------------------------------

REGION_EXAMPLE = "如：广西壮族自治区南宁市"


@dataclass(frozen=True)
class BankChoice:
    """What an account names, in the reference's own words (stored as such)."""

    region: Region
    branch: Branch


def bank_reference_errors(
    ref: Reference, *, bank_name: str, bank_region: str, branch_name: str
) -> tuple[BankChoice | None, list[dict[str, str]]]:
    """The region and branch an account names, or every field error at once: the region is
    a city or a municipality of the reference data, and a branch the data knows is in that
    region and belongs to the bank named as 开户银行.

    A branch the data does not know is refused only when the data is the whole CNAPS directory
    (``branches_complete``): the curated list that ships knows a few branches per city, and an
    enterprise whose account is at another branch must still be able to give it (it is taken
    as typed; the region and the bank are still checked)."""
    errors: list[dict[str, str]] = []
    region = ref.region(bank_region)
    if region is None:
        errors.append(
            {
                "field": "bank_region",
                "message": f"开户所在地“{bank_region}”不在行政区划数据中，请输入关键字后从列表中选择（{REGION_EXAMPLE}）",
            }
        )
    elif not region.selectable:
        errors.append({"field": "bank_region", "message": f"开户所在地请选择到地级市（{REGION_EXAMPLE}）"})
        region = None
    branch = ref.branch(branch_name)
    if branch is None and not ref.branches_complete and branch_name.strip():
        if region is not None:  # else the region is at fault, not the branch
            branch = Branch(" ".join(branch_name.split()), bank_name.strip(), "", region.code, None)
    elif branch is None:
        errors.append(
            {
                "field": "branch_name",
                "message": f"开户支行“{branch_name}”不在支行数据中，请输入关键字后从列表中选择",
            }
        )
    else:
        if region is not None and branch.region not in ref.codes_within(region):
            errors.append(
                {
                    "field": "branch_name",
                    "message": f"开户支行“{branch.name}”不在开户所在地“{region.full_name}”，请重新选择",
                }
            )
        if keyword(branch.bank) != keyword(bank_name):
            errors.append(
                {
                    "field": "branch_name",
                    "message": f"开户支行“{branch.name}”不属于开户银行“{bank_name}”，请重新选择",
                }
            )
    if errors or region is None or branch is None:
        return None, errors
    return BankChoice(region, branch), []
