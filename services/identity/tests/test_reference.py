"""支付认证's reference data: the rules (keyword search on Chinese names, the bank account's
checks) and the lookups — regions (开户所在地), banks (开户银行), branches (开户支行) — that
answer without a token."""

from __future__ import annotations

import httpx
import pytest

from identity.domain import organizations
from identity.domain.reference import Branch, Reference, bank_reference_errors, build_reference, keyword
from identity.service.reference import import_bank_branches, reference

REGIONS = "/api/v1/reference/regions"
BANKS = "/api/v1/reference/banks"
BRANCHES = "/api/v1/reference/bank-branches"

# --- the rules (pure) -----------------------------------------------------------------------------


@pytest.fixture
def ref() -> Reference:
    regions = [
        ("110000", "北京市", None),
        ("450000", "广西壮族自治区", None),
        ("450100", "南宁市", "450000"),
        ("450200", "柳州市", "450000"),
    ]
    branches = [
        Branch("中国工商银行南宁分行营业部", "中国工商银行", "102", "450100", "102611000011"),
        Branch("中国工商银行柳州分行营业部", "中国工商银行", "102", "450200", None),
        Branch("中国建设银行南宁分行营业部", "中国建设银行", "105", "450100", None),
        Branch("中国工商银行北京分行营业部", "中国工商银行", "102", "110000", None),
    ]
    return build_reference(regions, branches)


def test_a_keyword_ignores_width_case_and_spaces() -> None:
    assert keyword(" 广西 南宁（ＡＢＣ） ") == keyword("广西南宁(abc)")


def test_a_city_is_named_by_its_province_and_a_municipality_by_itself(ref: Reference) -> None:
    nanning = ref.region("450100")
    assert nanning is not None and nanning.full_name == "广西壮族自治区南宁市" and nanning.level == 2
    assert ref.region("广西壮族自治区 南宁市") == nanning
    beijing = ref.region("北京市")
    assert beijing is not None and beijing.selectable and beijing.level == 1
    guangxi = ref.region("广西壮族自治区")
    assert guangxi is not None and not guangxi.selectable
    assert ref.region("广西南宁") is None and ref.region("") is None


@pytest.mark.parametrize(
    ("query", "parent", "codes"),
    [
        (None, None, ["110000", "450000", "450100", "450200"]),
        ("南宁", None, ["450100"]),
        ("广西 柳州", None, ["450200"]),
        ("广西", None, ["450000", "450100", "450200"]),
        (None, "450000", ["450100", "450200"]),
        (None, "", ["110000", "450000"]),
        ("柳州", "110000", []),
    ],
)
def test_regions_are_found_by_every_word_of_the_query(
    ref: Reference, query: str | None, parent: str | None, codes: list[str]
) -> None:
    assert [r.code for r in ref.search_regions(query, parent)] == codes


@pytest.mark.parametrize(
    ("query", "region", "bank", "names"),
    [
        ("营业部 南宁", None, None, ["中国工商银行南宁分行营业部", "中国建设银行南宁分行营业部"]),
        ("建设", None, None, ["中国建设银行南宁分行营业部"]),
        (None, "450200", None, ["中国工商银行柳州分行营业部"]),
        (None, "450000", "工商", ["中国工商银行南宁分行营业部", "中国工商银行柳州分行营业部"]),
        ("南宁", "450200", None, []),
    ],
)
def test_branches_are_found_by_name_region_and_bank(
    ref: Reference, query: str | None, region: str | None, bank: str | None, names: list[str]
) -> None:
    where = ref.region(region)
    assert [b.name for b in ref.search_branches(query, where, bank)] == names


def test_a_branch_of_the_bank_in_the_region_is_accepted_in_the_datas_spelling(ref: Reference) -> None:
    choice, errors = bank_reference_errors(
        ref,
        bank_name="中国工商银行 ",
        bank_region="广西壮族自治区 南宁市",
        branch_name="中国工商银行南宁分行营业部",
    )
    assert errors == []
    assert choice is not None
    assert choice.region.full_name == "广西壮族自治区南宁市"
    assert choice.branch.cnaps_code == "102611000011"


@pytest.mark.parametrize(
    ("bank", "region", "branch", "fields", "words"),
    [
        ("中国工商银行", "广西南宁", "中国工商银行南宁分行营业部", ["bank_region"], "不在行政区划数据中"),
        ("中国工商银行", "广西壮族自治区", "中国工商银行南宁分行营业部", ["bank_region"], "地级市"),
        ("中国工商银行", "广西壮族自治区南宁市", "工行民族支行", ["branch_name"], "不在支行数据中"),
        (
            "中国工商银行",
            "广西壮族自治区南宁市",
            "中国工商银行柳州分行营业部",
            ["branch_name"],
            "不在开户所在地",
        ),
        (
            "中国农业银行",
            "广西壮族自治区南宁市",
            "中国工商银行南宁分行营业部",
            ["branch_name"],
            "不属于开户银行",
        ),
        ("中国工商银行", "火星", "没有", ["bank_region", "branch_name"], "火星"),
    ],
)
def test_a_region_or_branch_outside_the_data_is_refused_naming_its_field(
    ref: Reference, bank: str, region: str, branch: str, fields: list[str], words: str
) -> None:
    ref = complete(ref)
    choice, errors = bank_reference_errors(ref, bank_name=bank, bank_region=region, branch_name=branch)
    assert choice is None
    assert [e["field"] for e in errors] == fields
    assert words in errors[0]["message"]


def complete(ref: Reference) -> Reference:
    """The same reference as if it were the CNAPS directory: every branch with its 联行号."""
    coded = [
        Branch(b.name, b.bank, b.bank_code, b.region, b.cnaps_code or f"{b.bank_code}6110000{i:02d}")
        for i, b in enumerate(ref.branches)
    ]
    return Reference(ref.regions, tuple(coded))


def test_a_branch_the_curated_list_lacks_is_taken_as_typed_but_not_one_that_contradicts_it(
    ref: Reference,
) -> None:
    """The list that ships knows a few branches per city: an account at another branch must
    still be possible, while a known branch of another bank or city is refused."""
    assert not ref.branches_complete and complete(ref).branches_complete
    choice, errors = bank_reference_errors(
        ref,
        bank_name="中国工商银行",
        bank_region="广西壮族自治区南宁市",
        branch_name=" 中国工商银行南宁民族大道支行 ",
    )
    assert errors == [] and choice is not None
    assert (choice.branch.name, choice.branch.bank, choice.branch.region) == (
        "中国工商银行南宁民族大道支行",
        "中国工商银行",
        "450100",
    )
    choice, errors = bank_reference_errors(
        ref, bank_name="中国工商银行", bank_region="火星", branch_name="中国工商银行火星支行"
    )
    assert choice is None and [e["field"] for e in errors] == ["bank_region"]
    _, errors = bank_reference_errors(
        ref,
        bank_name="中国农业银行",
        bank_region="广西壮族自治区南宁市",
        branch_name="中国工商银行南宁分行营业部",
    )
    assert [e["field"] for e in errors] == ["branch_name"]


@pytest.mark.parametrize(
    ("account_name", "certified", "same"),
    [
        ("广西某某（南宁）机械有限公司", "广西某某(南宁)机械有限公司", True),
        ("  广西某某(南宁)机械有限公司　", "广西某某（南宁）机械有限公司", True),
        ("广西某某 (南宁) 机械有限公司", "广西某某（南宁）机械有限公司", True),
        ("广西某某【南宁】机械有限公司", "广西某某（南宁）机械有限公司", False),
        ("广西某某南宁机械有限公司", "广西某某（南宁）机械有限公司", False),
        ("张三", "广西某某（南宁）机械有限公司", False),
    ],
)
def test_the_account_name_is_the_certified_name_up_to_bracket_width_and_spaces(
    account_name: str, certified: str, same: bool
) -> None:
    refusal = organizations.account_name_refusal(account_name, certified)
    assert (refusal is None) is same
    if refusal:
        assert refusal.code == "validation_error" and refusal.field == "account_name"
        assert refusal.detail is not None and certified in refusal.detail and "一致" in refusal.detail


def test_the_shipped_data_has_guangxis_fourteen_cities_and_their_branches() -> None:
    ref = reference()
    cities = ref.search_regions(parent="450000")
    assert len(cities) == 14
    assert len(ref.search_regions(parent="")) == 31
    for city in cities:
        banks = {b.bank for b in ref.search_branches(region=city)}
        assert {
            "中国工商银行",
            "中国农业银行",
            "中国银行",
            "中国建设银行",
            "交通银行",
            "中国邮政储蓄银行",
        } <= banks
    assert all(ref.region_by_code[b.region].selectable for b in ref.branches)
    assert reference() is ref  # loaded once


def test_the_demo_accounts_name_branches_of_the_shipped_data() -> None:
    from common import demo

    ref = reference()
    for org in demo.ORGS:
        _, errors = bank_reference_errors(
            ref,
            bank_name=org.bank,
            bank_region="广西壮族自治区南宁市",
            branch_name=f"{org.bank}南宁分行营业部",
        )
        assert errors == [], org.label


def test_a_cnaps_directory_is_imported_keeping_only_usable_rows() -> None:
    rows = [
        {
            "cnaps_code": "102611000011",
            "bank": "中国工商银行",
            "name": "中国工商银行甲支行",
            "region": "450100",
        },
        {
            "cnaps_code": "10261100001",
            "bank": "中国工商银行",
            "name": "中国工商银行乙支行",
            "region": "450100",
        },
        {
            "cnaps_code": "105611000019",
            "bank": "中国建设银行",
            "name": "中国建设银行丙支行",
            "region": "广西南宁",
        },
        {
            "cnaps_code": "",
            "bank_code": "313",
            "bank": "桂林银行",
            "name": "桂林银行丁支行",
            "region": "广西壮族自治区桂林市",
        },
        {
            "cnaps_code": "102611000020",
            "bank": "中国工商银行",
            "name": "中国工商银行甲支行",
            "region": "450100",
        },
    ]
    text, refused = import_bank_branches(rows, reference())
    assert text.splitlines() == [
        "cnaps_code,bank_code,bank,name,region",
        "102611000011,102,中国工商银行,中国工商银行甲支行,450100",
        ",313,桂林银行,桂林银行丁支行,450300",
    ]
    assert refused == ["第3行：联行号应为12位数字", "第4行：所在地不在行政区划数据中", "第6行：行名重复"]


# --- the lookups through the API (real PostgreSQL and RabbitMQ) -----------------------------------


@pytest.mark.broker
async def test_regions_are_looked_up_by_keyword_without_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get(REGIONS, params={"q": "南宁"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            {
                "code": "450100",
                "name": "南宁市",
                "full_name": "广西壮族自治区南宁市",
                "parent": "450000",
                "level": 2,
                "selectable": True,
            }
        ],
        "total": 1,
        "page": 1,
        "page_size": 20,
    }


@pytest.mark.broker
async def test_the_provinces_and_a_provinces_cities_are_listed_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    provinces = (await client.get(REGIONS, params={"parent": "", "page_size": 100})).json()
    assert provinces["total"] == 31
    assert {p["level"] for p in provinces["items"]} == {1}
    guangxi = next(p for p in provinces["items"] if p["code"] == "450000")
    assert guangxi["selectable"] is False
    first = (await client.get(REGIONS, params={"parent": "450000", "page_size": 10})).json()
    second = (await client.get(REGIONS, params={"parent": "450000", "page_size": 10, "page": 2})).json()
    assert first["total"] == second["total"] == 14
    assert len(first["items"]) == 10 and len(second["items"]) == 4
    assert second["items"][-1]["full_name"] == "广西壮族自治区崇左市"


@pytest.mark.broker
async def test_an_unknown_parent_or_region_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    r = await client.get(REGIONS, params={"parent": "999999"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent"
    r = await client.get(BRANCHES, params={"region": "火星"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "region"
    assert "火星" in r.json()["detail"]


@pytest.mark.broker
async def test_branches_are_looked_up_by_keyword_region_and_bank(client: httpx.AsyncClient) -> None:
    r = await client.get(BRANCHES, params={"q": "营业部", "region": "广西壮族自治区柳州市", "bank": "工商"})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [
        {
            "name": "中国工商银行柳州分行营业部",
            "bank": "中国工商银行",
            "bank_code": "102",
            "cnaps_code": None,
            "region": "450200",
            "region_name": "广西壮族自治区柳州市",
        }
    ]
    # A province's code takes in its cities.
    everywhere = (await client.get(BRANCHES, params={"region": "450000", "bank": "中国建设银行"})).json()
    assert everywhere["total"] == 14
    assert (await client.get(BRANCHES, params={"q": "没有这个支行"})).json()["total"] == 0


@pytest.mark.broker
async def test_banks_are_listed_once_each(client: httpx.AsyncClient) -> None:
    r = await client.get(BANKS, params={"q": "工商"})
    assert r.json()["items"] == [{"name": "中国工商银行", "bank_code": "102"}]
    names = [b["name"] for b in (await client.get(BANKS, params={"page_size": 100})).json()["items"]]
    assert len(names) == len(set(names)) and "桂林银行" in names
