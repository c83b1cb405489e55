"""The portal's notices and policy documents: a title, a kind, rich text or an attached PDF.

Rich text is written by administrators and read by the public, so it is cleaned to the tags a
document needs (headings, paragraphs, lists, tables, emphasis, links) by nh3 (ammonia): no
script, no event handler, no style, no foreign frame; links get ``rel="noopener noreferrer"``.
"""

from __future__ import annotations

import nh3

from common.rules import Refusal

KINDS: dict[str, str] = {"policy": "政策文件", "guide": "操作指南", "notice": "通知公告"}

ALLOWED_TAGS = {
    "p", "br", "h1", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "ol", "ul", "li",
    "table", "thead", "tbody", "tr", "th", "td", "a", "blockquote", "span", "div",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def clean_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def check_body(body_html: str, attachment_file_id: str | None) -> None:
    """A notice says something: text, a PDF, or both."""
    if not body_html.strip() and not attachment_file_id:
        raise Refusal("notice_empty")
