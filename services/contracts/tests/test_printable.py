"""What was agreed is what the signed document shows: the contract's font covers GB 18030's
hanzi (CJK Unified Ideographs and Extension A)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageChops
from pypdf import PdfReader

from contracts.document import seal_png

API = "/api/v1"
NOTDEF = "\U0010fffd"  # a private-use code point no font maps: drawn as .notdef

# Traditional forms outside GB 2312: with the old font the signed text read "乙方  退 已收款".
NO_REFUND = "第一条 乙方無須退還已收款項。"
# Extension A (U+3400, U+4DB5) in the terms; names with hanzi outside GB 2312.
REPRESENTATIVES = "第二条 甲方代表：王㐀；乙方代表：李䶵。"
ENTERPRISE = "广西堃喆赟制造有限公司"
PROVIDER = "南宁昇镕玥珺祎瑄数字化服务中心"
PRODUCT = "企业数字化诊断服务（堃）"


def pdf_text(pdf: bytes) -> str:
    """Every page's extracted text, without whitespace (line breaks fall where lines wrap)."""
    return "".join("".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_the_signed_pdf_says_what_was_agreed_in_every_character(deal: Any) -> None:
    await deal.drafted(enterprise_name=ENTERPRISE, provider_name=PROVIDER, product_name=PRODUCT)
    terms = f"{NO_REFUND}\n{REPRESENTATIVES}"
    r = await deal.put(terms=terms)
    assert r.status_code == 200, r.text
    assert (await deal.act("submit", deal.provider)).status_code == 200
    r = await deal.act("agree", deal.enterprise)
    assert r.status_code == 200, r.text
    for who in (deal.enterprise, deal.provider):
        assert (await deal.seal(who)).status_code == 201
    assert (await deal.sign(deal.enterprise)).status_code == 200
    r = await deal.sign(deal.provider)
    assert r.status_code == 200 and r.json()["state"] == "signed", r.text

    signed = await deal.client.get(
        f"{API}/contracts/{deal.contract_id}/document", headers=deal.enterprise.headers
    )
    assert signed.status_code == 200
    text = pdf_text(signed.content)
    for agreed in (
        f"甲方（委托方）：{ENTERPRISE}",
        f"乙方（服务机构）：{PROVIDER}",
        f"服务产品：{PRODUCT}（数字化转型）",
        NO_REFUND,
        REPRESENTATIVES,
    ):
        assert "".join(agreed.split()) in text, f"{agreed!r} not in the signed text {text!r}"


def test_a_seal_glyph_beyond_gb_2312_is_drawn_not_left_blank() -> None:
    for ch in "堃喆赟昇镕玥珺祎瑄㐀䶵無須還項":
        drawn = Image.open(io.BytesIO(seal_png(ch))).convert("RGBA")
        notdef = Image.open(io.BytesIO(seal_png(NOTDEF))).convert("RGBA")
        assert ImageChops.difference(drawn, notdef).getbbox() is not None, ch
