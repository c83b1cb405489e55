"""identity.domain.files: the pure rules behind the file routes (names, who reads, sizes), and
the download's Content-Disposition (common.http) they serve."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from common.http import content_disposition
from identity.domain import files
from identity.domain.files import Reader


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("营业执照.pdf", "营业执照.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        # PDF bytes named .png are stored as .pdf (security finding 7: the type decides).
        ("C:\\Users\\me\\发票.png", "发票.pdf"),
        ("bad\x00\x07name.pdf", "badname.pdf"),
        ("", "file.pdf"),
        ("..", "file.pdf"),
        (None, "file.pdf"),
        ("x.html", "x.pdf"),
        ("\u202efdp.exe", "fdp.pdf"),
        ("v1.2 report", "v1.2 report.pdf"),
        ("a\u200bb.pdf", "ab.pdf"),
    ],
)
def test_file_names_keep_only_the_last_segment(raw: str | None, expected: str) -> None:
    assert files.clean_file_name(raw, "application/pdf") == expected


def test_long_file_names_keep_their_extension() -> None:
    name = files.clean_file_name("合" * 300 + ".pdf", "application/pdf")
    assert len(name) == 255 and name.endswith(".pdf")


def test_content_disposition_carries_the_chinese_name_safely() -> None:
    value = content_disposition('合同"; x=1.pdf')
    assert value.isascii()
    assert value.startswith('inline; filename="')
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and ";" not in fallback
    assert unquote(value.split("filename*=UTF-8''", 1)[1]) == '合同"; x=1.pdf'


def test_who_may_read_a_file() -> None:
    rule = files.may_read_file
    kw = {"file_org_id": "org-a", "uploader_id": "u-1", "granted_org_ids": {"org-b"}}
    assert rule(Reader("u-1", "owner", "org-a"), **kw)
    assert rule(Reader("u-2", "agent", "org-a"), **kw)
    assert rule(Reader("u-3", "owner", "org-b"), **kw)  # granted
    assert rule(Reader("u-4", "reviewer", None), **kw)
    assert not rule(Reader("u-5", "owner", "org-c"), **kw)
    assert not rule(Reader("u-6", "owner", None), **kw)


def test_size_limits_read_well() -> None:
    assert files.human_size(10 * 1024 * 1024) == "10 MB"
    assert files.human_size(1024) == "1 KB"
    assert files.human_size(500) == "500 B"
