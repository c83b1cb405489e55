"""What was agreed is what the signed document shows: the contract's font covers GB 18030's
hanzi (CJK Unified Ideographs and Extension A), and any text the font cannot show is refused
before it can reach a document or a seal, naming the characters."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import reportlab
from PIL import Image, ImageChops
from pypdf import PdfReader

from common.events import OrganizationCertified
from contracts.document import seal_png, unprintable, unprintable_in_seal

API = "/api/v1"
NOTDEF = "\U0010fffd"  # a private-use code point no font maps: drawn as .notdef

# Traditional forms outside GB 2312: with the old font the signed text read "乙方  退 已收款".
NO_REFUND = "第一条 乙方無須退還已收款項。"
# Extension A (U+3400, U+4DB5) in the terms; names with hanzi outside GB 2312.
REPRESENTATIVES = "第二条 甲方代表：王㐀；乙方代表：李䶵。"
ENTERPRISE = "广西堃喆赟制造有限公司"
PROVIDER = "南宁昇镕玥珺祎瑄数字化服务中心"
PRODUCT = "企业数字化诊断服务（堃）"


async def certified(deal: Any, name: str) -> Any:
    """A new certified organisation named ``name``, and its owner."""
    owner = deal.h.issuer.member(caps=("enterprise",))
    await deal.h.publish(
        OrganizationCertified(
            org_id=str(owner.org_id), name=name, uscc="91450100MA5XXXXXX1", kind="enterprise"
        ),
        aggregate_id=str(owner.org_id),
    )
    await deal.h.settle()
    return owner


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


async def test_terms_the_font_cannot_show_are_refused_naming_them_and_nothing_changes(deal: Any) -> None:
    await deal.drafted()
    assert (
        await deal.put(total_fen=20_000_000, deposit_fen=1_000_000, terms="第一条 原条款。")
    ).status_code == 200
    before = (await deal.contract()).json()

    r = await deal.put(terms="第一条 乙方無須退還已收款項😀。\n第二条 付款方式🏭😀。")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "text_not_printable"
    assert problem["detail"] == "合同条款含有无法在合同文本中显示的字符：😀、🏭"
    assert problem["characters"] == ["😀", "🏭"]
    assert problem["errors"] == [{"field": "terms", "message": problem["detail"]}]
    # a control character (a tab) is refused before, by the request's schema (common.text)
    tab = await deal.put(terms="第一条 付款\t方式。")
    assert tab.status_code == 422 and tab.json()["errors"][0]["field"] == "terms"
    assert "控制字符" in tab.json()["errors"][0]["message"]
    after = (await deal.contract()).json()
    assert after == before  # neither the terms nor the amounts of the refused edit
    assert after["terms"] == "第一条 原条款。" and after["total_fen"] == 20_000_000


async def test_agreeing_is_refused_while_a_name_on_the_contract_cannot_be_shown(deal: Any) -> None:
    await deal.drafted(provider_name="南宁数字化服务中心😀", product_name="数字化诊断🏭服务")
    assert (await deal.put()).status_code == 200
    assert (await deal.act("submit", deal.provider)).status_code == 200

    r = await deal.act("agree", deal.enterprise)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "text_not_printable"
    assert problem["detail"] == (
        "乙方名称含有无法在合同文本中显示的字符：😀；服务产品名称含有无法在合同文本中显示的字符：🏭"
    )
    assert [e["field"] for e in problem["errors"]] == ["provider_name", "product_name"]
    contract = (await deal.contract()).json()
    assert contract["state"] == "pending_review" and contract["agreed_at"] is None
    assert contract["document_sha256"] is None  # no document was made
    assert contract["actions"] == ["agree", "return"]  # the enterprise can still return it


async def test_a_seal_is_refused_for_a_name_it_cannot_show_and_the_verification_stays_unspent(
    deal: Any,
) -> None:
    owner = await certified(deal, "广西😀制造有限公司")
    token = deal.h.issuer.idv(owner, purpose="seal")
    for _ in range(2):  # the refusal spent nothing: the same token is refused the same way
        r = await deal.client.post(
            f"{API}/me/seal", json={"verification_token": token}, headers=owner.headers
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "text_not_printable"
        assert r.json()["detail"] == "单位名称含有无法在电子签章中显示的字符：😀"
    assert (await deal.client.get(f"{API}/me/seal", headers=owner.headers)).status_code == 404


async def test_a_seal_shows_a_name_beyond_gb_2312(deal: Any) -> None:
    name = "广西堃喆赟科技有限公司"
    owner = await certified(deal, name)
    r = await deal.seal(owner)
    assert r.status_code == 201, r.text
    image = await deal.client.get(f"{API}/me/seal", headers=owner.headers)
    shown = Image.open(io.BytesIO(image.content)).convert("RGBA")
    assert (
        ImageChops.difference(shown, Image.open(io.BytesIO(seal_png(name))).convert("RGBA")).getbbox() is None
    )
    # the same seal with 堃 where the font has no glyph (.notdef) looks different
    blank = Image.open(io.BytesIO(seal_png(name.replace("堃", NOTDEF)))).convert("RGBA")
    assert ImageChops.difference(shown, blank).getbbox() is not None


def test_the_shipped_font_shows_every_hanzi_of_gb_18030_and_what_a_contract_uses() -> None:
    hanzi = "".join(map(chr, [*range(0x4E00, 0x9FF0), *range(0x3400, 0x4DB6)]))
    assert unprintable(hanzi) == []
    symbols = "".join(map(chr, [*range(0x20, 0x7F), *range(0x3000, 0x3040), *range(0xFF01, 0xFF5F)]))
    assert unprintable(symbols + "·—‘’“”…￥×÷±°§№") == []
    assert unprintable("甲方\n乙方", multiline=True) == [] and unprintable("甲方\n乙方") == ["\n"]
    assert unprintable("堃😀堃\U0001f3ed😀" + NOTDEF) == ["😀", "\U0001f3ed", NOTDEF]


def test_the_check_reads_the_configured_font_not_a_list_of_ranges() -> None:
    latin = str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")  # Latin only
    assert unprintable("Contract 1", font=latin) == []
    assert unprintable("合同 1", font=latin) == ["合", "同"]
    assert unprintable_in_seal("甲公司", font=latin) == ["甲", "公", "司", "合", "同", "专", "用", "章"]


def test_a_seal_glyph_beyond_gb_2312_is_drawn_not_left_blank() -> None:
    for ch in "堃喆赟昇镕玥珺祎瑄㐀䶵無須還項":
        drawn = Image.open(io.BytesIO(seal_png(ch))).convert("RGBA")
        notdef = Image.open(io.BytesIO(seal_png(NOTDEF))).convert("RGBA")
        assert ImageChops.difference(drawn, notdef).getbbox() is not None, ch
