"""Designation lists: reviewers import CSV or XLSX (tens of thousands of rows, streamed), every
rejected row reported with its reason; the enterprise's tier follows on its next application,
never on an issued voucher. The CLI does the same with a progress bar."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from openpyxl import Workbook

from quota import cli
from quota.models import Voucher
from quota.testing import API, Quota, make_uscc

pytestmark = pytest.mark.parametrize("transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker)])


def upload(name: str, data: bytes, content_type: str = "text/csv") -> dict:
    return {"file": (name, data, content_type)}


async def test_a_csv_list_is_imported_and_every_refused_row_is_reported_with_its_reason(quota: Quota) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    a, b = make_uscc(1), make_uscc(2)
    bad = a[:-1] + ("0" if a[-1] != "0" else "1")
    csv = "\n".join(
        [
            "统一社会信用代码,企业类型",
            f"{a},创新型中小企业",
            f"{b},国家级制造业单项冠军",
            f"{bad},创新型中小企业",
            f"{b},旅游达人企业",
            f"{a},创新型中小企业",
            "",
            f" {b.lower()} ,一般规模以上制造业企业",
        ]
    ).encode("utf-8-sig")
    r = await quota.client.post(
        f"{API}/admin/designations/import", files=upload("名单.csv", csv), headers=reviewer.headers
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 3
    assert [(x["row"], x["uscc"]) for x in report["rejected"]] == [(4, bad), (5, b), (6, a)]
    reasons = [x["reason"] for x in report["rejected"]]
    assert "校验位" in reasons[0] and "未知" in reasons[1] and "重复" in reasons[2]
    assert await quota.scalar("SELECT count(*) FROM designations") == 3
    assert await quota.scalar("SELECT count(*) FROM audit_log WHERE action = 'designations.import'") == 1

    ent = await quota.certified(uscc=b)
    app = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert app.json()["tier_fen"] == 30_000_000 and app.json()["tier"] == "国家级制造业单项冠军"


def chinese_list(a: str, b: str) -> str:
    """A list as staff keep it: a Chinese header, CRLF line ends (Excel), an unknown type."""
    return "\r\n".join(
        [
            "统一社会信用代码,企业类型",
            f"{a},专精特新“小巨人”企业",
            f"{b},国家级制造业单项冠军",
            f"{b},旅游达人企业",
            "",
        ]
    )


@pytest.mark.parametrize(
    "encoding",
    [
        "utf-8",
        "utf-8-sig",  # Excel's "CSV UTF-8"
        "gbk",  # Excel's "CSV" on Chinese Windows (code page 936)
        "gb2312",
        "gb18030",
    ],
)
async def test_a_csv_list_in_any_encoding_excel_saves_is_imported_whole(quota: Quota, encoding: str) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    a, b = make_uscc(11), make_uscc(12)
    data = chinese_list(a, b).encode(encoding)
    r = await quota.client.post(
        f"{API}/admin/designations/import", files=upload("名单.csv", data), headers=reviewer.headers
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 2, report
    assert [(x["row"], x["designation"]) for x in report["rejected"]] == [(4, "旅游达人企业")]
    rows = await quota.rows("SELECT uscc, designation FROM designations ORDER BY uscc")
    assert rows == [(a, "专精特新“小巨人”企业"), (b, "国家级制造业单项冠军")]


async def test_a_gb18030_list_keeps_characters_gbk_does_not_have(quota: Quota) -> None:
    """GB18030's four-byte characters (an Extension B ideograph, a rare name character) are
    read as written: the refused row reports them as they are, not as replacement marks."""
    reviewer = quota.h.issuer.staff("reviewer")
    a = make_uscc(13)
    data = f"uscc,designation\n{a},𠀾赟企业\n".encode("gb18030")
    r = await quota.client.post(
        f"{API}/admin/designations/import", files=upload("名单.csv", data), headers=reviewer.headers
    )
    assert r.status_code == 200, r.text
    assert [x["designation"] for x in r.json()["rejected"]] == ["𠀾赟企业"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("统一社会信用代码,企业类型\n".encode("utf-16"), id="utf-16"),
        pytest.param(b"uscc,designation\n\x80\xff\x80\xff,\xfe\n", id="neither-utf8-nor-gb18030"),
        pytest.param(b"uscc,designation\n91450100MA\x00\x00,x\n", id="binary"),
    ],
)
async def test_a_file_in_no_known_encoding_is_a_clear_422_and_imports_nothing(
    quota: Quota, data: bytes
) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    r = await quota.client.post(
        f"{API}/admin/designations/import", files=upload("名单.csv", data), headers=reviewer.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "import_unreadable"
    assert "UTF-8" in r.json()["detail"] and "GB18030" in r.json()["detail"]
    assert await quota.scalar("SELECT count(*) FROM designations") == 0
    assert await quota.scalar("SELECT count(*) FROM audit_log WHERE action = 'designations.import'") == 0


async def test_an_xlsx_list_is_read_streaming_and_a_reimport_never_changes_an_issued_voucher(
    quota: Quota,
) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    uscc = make_uscc(7)
    ent = await quota.certified(uscc=uscc)
    await quota.designate(uscc, "一般规模以上制造业企业")
    app = (
        await quota.client.post(
            f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
        )
    ).json()
    await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/approve", json={}, headers=reviewer.headers
    )

    book = Workbook()
    sheet = book.active
    sheet.append(["uscc", "designation"])
    sheet.append([uscc, "专精特新“小巨人”企业"])
    sheet.append(["not-a-uscc", "创新型中小企业"])
    data = io.BytesIO()
    book.save(data)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = await quota.client.post(
        f"{API}/admin/designations/import",
        files=upload("名单.xlsx", data.getvalue(), xlsx),
        headers=reviewer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and [x["row"] for x in r.json()["rejected"]] == [3]
    voucher = await quota.row(Voucher, app["id"] and (await quota.scalar("SELECT id FROM vouchers")))
    assert (voucher.total_fen, voucher.tier) == (5_000_000, "一般规模以上制造业企业")

    broken = await quota.client.post(
        f"{API}/admin/designations/import",
        files=upload("坏.xlsx", b"PK\x03\x04 not a workbook", xlsx),
        headers=reviewer.headers,
    )
    assert broken.status_code == 422 and broken.json()["code"] == "import_unreadable"


async def test_tens_of_thousands_of_rows_import_in_seconds(quota: Quota) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    rows = ["uscc,designation"] + [f"{make_uscc(n)},创新型中小企业" for n in range(30_000)]
    data = "\n".join(rows).encode()
    assert len(data) > 1_048_576  # above the default body limit: the import route allows more
    started = time.perf_counter()
    r = await quota.client.post(
        f"{API}/admin/designations/import", files=upload("big.csv", data), headers=reviewer.headers
    )
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 30_000 and r.json()["rejected"] == []
    assert await quota.scalar("SELECT count(*) FROM designations") == 30_000
    assert elapsed < 30
    print(f"\n[quota] 30,000-row designation import: {elapsed:.2f}s")


async def test_only_reviewers_import(quota: Quota) -> None:
    ent = await quota.certified()
    for who in (ent, quota.h.issuer.staff("finance")):
        r = await quota.client.post(
            f"{API}/admin/designations/import", files=upload("a.csv", b"x,y"), headers=who.headers
        )
        assert r.status_code == 403
    assert await quota.scalar("SELECT count(*) FROM designations") == 0


async def test_the_cli_imports_a_list_with_a_progress_bar(
    quota: Quota, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    path = tmp_path / "名单.csv"
    path.write_text(
        "uscc,designation\n"
        + "\n".join(f"{make_uscc(n)},自治区创新示范企业" for n in range(500))
        + "\nbad,x\n"
    )
    url = quota.h["quota"].runtime.settings.db_url
    code = await asyncio.to_thread(cli.main, ["import-designations", str(path), "--database-url", url])
    assert code == 0
    out, err = capsys.readouterr()
    assert '"accepted": 500' in out and '"rejected_total": 1' in out
    assert "导入企业划型名单" in err  # tqdm's bar
    assert await quota.scalar("SELECT count(*) FROM designations") == 500
    assert await asyncio.to_thread(cli.main, ["import-designations", str(tmp_path / "missing.csv")]) == 2


async def test_the_cli_reads_a_gbk_list_and_refuses_one_in_no_known_encoding(
    quota: Quota, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    url = quota.h["quota"].runtime.settings.db_url
    gbk = tmp_path / "名单.csv"
    gbk.write_bytes(chinese_list(make_uscc(21), make_uscc(22)).encode("gbk"))
    assert await asyncio.to_thread(cli.main, ["import-designations", str(gbk), "--database-url", url]) == 0
    assert '"accepted": 2' in capsys.readouterr().out

    bad = tmp_path / "乱码.csv"
    bad.write_bytes("uscc,designation\n".encode("utf-16"))
    assert await asyncio.to_thread(cli.main, ["import-designations", str(bad), "--database-url", url]) == 2
    assert "文件编码无法识别" in capsys.readouterr().err
    assert await quota.scalar("SELECT count(*) FROM designations") == 2
