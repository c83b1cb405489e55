"""The seal image and the contract PDF, without a database."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from contracts.document import ContractText, contract_lines, render_contract, seal_png


@pytest.mark.parametrize(
    "name",
    ["甲", "南宁数字化服务中心", "广西壮族自治区南宁市某某某某某某某某某某制造业股份有限公司", "𠀀😀公司"],
)
def test_a_seal_is_a_round_red_stamp_with_a_star_on_a_transparent_ground(name: str) -> None:
    image = Image.open(io.BytesIO(seal_png(name))).convert("RGBA")
    assert image.size == (400, 400)
    assert image.getpixel((0, 0))[3] == 0  # transparent outside the ring
    assert image.getpixel((200, 200))[:3] == (218, 37, 29)  # the star
    assert image.getpixel((200, 7))[:3] == (218, 37, 29)  # the ring


def text(terms: str) -> ContractText:
    return ContractText(
        "c", "ORD261201220000123", 2, "广西测试制造有限公司", "南宁数字化服务中心", "企业诊断服务", "企业诊断",
        30_000_000, 9_000_000, 21_000_000, 6_000_000, 15_000_000, terms, None, "广西制造业企业培优育强服务券管理平台",
    )  # fmt: skip


def test_the_pdf_holds_parties_product_amounts_in_figures_and_capitals_and_embeds_its_font() -> None:
    t = text("第一条 服务内容：企业诊断。")
    assert b"/FontFile2" in render_contract(t).pdf  # the TrueType font is embedded
    words = "\n".join(line for line, *_ in contract_lines(t))
    for expected in (
        "甲方（委托方）：广西测试制造有限公司",
        "乙方（服务机构）：南宁数字化服务中心",
        "服务产品：企业诊断服务（企业诊断）",
        "合同总金额：300,000 元（大写：叁拾万元整）",
        "服务券抵扣：90,000 元（大写：玖万元整）",
        "企业实付金额：210,000 元（大写：贰拾壹万元整）",
        "合同定金：60,000 元（大写：陆万元整）",
        "合同尾款：150,000 元（大写：壹拾伍万元整）",
        "第一条 服务内容：企业诊断。",
    ):
        assert expected in words, expected


def test_long_terms_run_over_pages_and_the_seal_boxes_are_on_the_last_one() -> None:
    rendered = render_contract(text(("很长的合同条款。" * 60 + "\n") * 40))
    pages = int(PdfFileReader(io.BytesIO(rendered.pdf)).root["/Pages"]["/Count"])
    assert pages > 3
    assert {f.page for f in rendered.fields} == {pages - 1}


def test_chinese_text_wraps_between_characters_within_the_width() -> None:
    from reportlab.pdfbase import pdfmetrics

    from contracts.document import _reportlab_font, font_path, wrap

    face = _reportlab_font(str(font_path()))
    s = "甲方应于合同签订后按约定支付定金，乙方按服务方案提供企业诊断服务。" * 5
    lines = wrap(s, face, 11, 300)
    assert len(lines) > 3 and "".join(lines) == s
    assert all(pdfmetrics.stringWidth(line, face, 11) <= 300 for line in lines)


def test_contracts_rendered_at_once_in_worker_threads_all_come_out_whole() -> None:
    """Agreeing renders in a worker thread (asyncio.to_thread), so several renders run at once
    in one process; reportlab's font object keeps per-document subset state that is not safe
    to share between threads (a KeyError in makeSubset answered 同意 with 500)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from pypdf import PdfReader

    # the pinyin vowels are composite glyphs: subsetting reads their parts from the font file
    hanzi = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥天地玄黄宇宙洪荒āáǎàōóǒòēéěèīíǐìūúǔùǖǘǚǜü"

    def one(i: int) -> str:
        terms = f"第{i}条 " + "".join(hanzi[(i * 7 + k) % len(hanzi)] for k in range(24))
        pdf = render_contract(text(terms)).pdf
        return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can: the race, every time
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            texts = list(pool.map(one, range(120)))
    finally:
        sys.setswitchinterval(switch)
    for i, got in enumerate(texts):
        assert f"第{i}条" in got.replace(" ", ""), got[:200]
