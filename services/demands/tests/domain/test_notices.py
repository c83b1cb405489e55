"""The pure rules of notices: demands.domain.notices."""

from __future__ import annotations

from demands.domain import notices as n

from .samples import refused


def test_notice_html_is_cleaned() -> None:
    html = n.clean_html(
        '<h2>办法</h2><p onclick="x()">正文<script>alert(1)</script></p><a href="javascript:x">链接</a>'
    )
    assert "<script" not in html and "onclick" not in html and "javascript:" not in html
    assert "<h2>办法</h2>" in html and "正文" in html
    refused("notice_empty", n.check_body, "", None)
    n.check_body("", "file-1")
