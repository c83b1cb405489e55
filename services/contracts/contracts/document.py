"""The contract's PDF (reportlab) and the organisations' seal images (Pillow).

The PDF embeds its CJK TrueType font (a subset of the glyphs used, ``/FontFile2``), so the
document reads the same everywhere; a non-embedded CID font (STSong-Light) would leave the
reader to substitute one. The font is the one shipped in ``contracts/fonts`` (Noto Sans SC
Regular: every hanzi of GB 18030, CJK Unified Ideographs and Extension A; see its README)
unless ``CONTRACTS_PDF_FONT_PATH`` names another TrueType font (reportlab cannot embed CFF
outlines, so not an ``.otf``).

A character the font does not map would be drawn as its empty .notdef glyph: the signed text
would silently lose it. :func:`unprintable` reads the characters the font maps (its cmap, as
reportlab reads it, once per font) and the service refuses any text that has others before it
reaches a document or a seal.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from common.money import amount_in_words, format_yuan
from common.numbers import format_datetime
from contracts.signing import FieldBox

SHIPPED_FONT = Path(__file__).parent / "fonts" / "NotoSansSC-Regular.ttf"
SEAL_RED = (218, 37, 29, 255)


class FontMissing(RuntimeError):
    """No usable CJK TrueType font: the contract PDF cannot be made."""


def font_path(configured: str | None = None) -> Path:
    path = Path(configured) if configured else SHIPPED_FONT
    if not path.is_file():
        raise FontMissing(
            f"CJK font {path} not found: set CONTRACTS_PDF_FONT_PATH to a TrueType font (.ttf/.ttc) with "
            "Chinese glyphs (glyf outlines, not CFF), or leave it unset for the shipped Noto Sans SC"
        )
    return path


# reportlab is not thread-safe (Django's "Outputting PDFs" says so too): one TTFont object is
# shared by every document of the process, keeps per-document subset state and reads the font
# file through one cursor while subsetting. Renders run in worker threads (asyncio.to_thread),
# so they take turns; one takes 13-16 ms.
_REPORTLAB = threading.RLock()


@lru_cache(maxsize=4)
def _reportlab_font(path: str) -> str:
    name = "ContractCJK-" + str(abs(hash(path)) % 10_000_000)
    with _REPORTLAB:  # registered once, even when two first renders race
        try:
            pdfmetrics.getFont(name)
        except KeyError:
            kwargs = {"subfontIndex": 0} if path.lower().endswith(".ttc") else {}
            pdfmetrics.registerFont(TTFont(name, path, **kwargs))
    return name


@lru_cache(maxsize=4)
def _shown(path: str) -> frozenset[int]:
    """The code points the font draws: its cmap as reportlab reads it for the PDF (Pillow reads
    the same table for the seal), less any mapped to glyph 0, .notdef."""
    face = pdfmetrics.getFont(_reportlab_font(path)).face
    return frozenset(code for code, glyph in face.charToGlyph.items() if glyph)


# What ``str.splitlines`` breaks the terms at: they end a paragraph and are never drawn.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def unprintable(text: str, *, font: str | None = None, multiline: bool = False) -> list[str]:
    """The distinct characters of ``text`` that the contract's font cannot show, in the order
    they first appear (``multiline``: line breaks are fine, as in the terms)."""
    shown = _shown(str(font_path(font)))
    found: list[str] = []
    for ch in text:
        if ord(ch) not in shown and not (multiline and ch in LINE_BREAKS) and ch not in found:
            found.append(ch)
    return found


@lru_cache(maxsize=16)
def _pil_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=0)


# --- the seal ------------------------------------------------------------------------------------


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * 0.382
    points = []
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


SEAL_USE = "合同专用章"


def unprintable_in_seal(org_name: str, *, font: str | None = None) -> list[str]:
    """The characters of the organisation's name (or of the seal's use) the seal cannot show."""
    return unprintable(org_name + SEAL_USE, font=font)


def seal_png(org_name: str, *, font: str | None = None, size: int = 400, label: str = SEAL_USE) -> bytes:
    """A round red seal: the organisation's name in an arc above a five-pointed star, the
    seal's use below it; transparent around."""
    path = str(font_path(font))
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c = size / 2
    ring = size * 0.035
    draw.ellipse((ring / 2, ring / 2, size - ring / 2, size - ring / 2), outline=SEAL_RED, width=int(ring))
    draw.polygon(_star(c, c, size * 0.15), fill=SEAL_RED)

    name = org_name.strip() or "—"
    # The glyphs fill at most 250° of the ring, a little apart; a long name gets smaller glyphs.
    max_span = math.radians(250)
    outer = c - ring * 1.5
    glyph = int(min(size * 0.115, max_span * (outer - size * 0.06) / (len(name) * 1.08)))
    glyph = max(glyph, 10)
    name_font = _pil_font(path, glyph)
    radius = outer - glyph * 0.6
    span = min(max_span, (len(name) - 1) * glyph * 1.08 / radius)
    for i, ch in enumerate(name):
        theta = -span / 2 + (span * i / (len(name) - 1) if len(name) > 1 else span / 2)
        tile = Image.new("RGBA", (glyph * 2, glyph * 2), (0, 0, 0, 0))
        ImageDraw.Draw(tile).text((glyph, glyph), ch, font=name_font, fill=SEAL_RED, anchor="mm")
        tile = tile.rotate(-math.degrees(theta), resample=Image.Resampling.BICUBIC)
        x = c + radius * math.sin(theta) - glyph
        y = c - radius * math.cos(theta) - glyph
        img.alpha_composite(tile, (round(x), round(y)))

    label_font = _pil_font(path, int(size * 0.08))
    draw.text((c, c + size * 0.27), label, font=label_font, fill=SEAL_RED, anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- the contract --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractText:
    contract_id: str
    order_no: str
    version: int
    enterprise_name: str
    provider_name: str
    product_name: str
    category: str
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int
    terms: str
    agreed_at: datetime | None
    platform_name: str


TITLE = "服务合同"
SEAL_LABELS = ("甲方（盖章）：", "乙方（盖章）：")


@dataclass(frozen=True)
class RenderedContract:
    pdf: bytes
    fields: list[FieldBox]


def wrap(s: str, face: str, size: float, max_width: float) -> list[str]:
    """Lines of ``s`` no wider than ``max_width``: Chinese has no spaces to break at, so break
    between any two characters (reportlab's simpleSplit breaks only at spaces)."""
    lines: list[str] = []
    current = ""
    for ch in s:
        if current and pdfmetrics.stringWidth(current + ch, face, size) > max_width:
            lines.append(current)
            current = ch.lstrip() if ch.isspace() else ch
        else:
            current += ch
    lines.append(current)
    return lines


def _money_line(label: str, fen: int) -> str:
    return f"{label}：{format_yuan(fen)} 元（大写：{amount_in_words(fen)}）"


def contract_lines(text: ContractText, *, draft: bool = False) -> list[tuple[str, float, float, float]]:
    """The contract's text below its title: (line, font size, space before, indent)."""
    out: list[tuple[str, float, float, float]] = []
    if draft:
        out.append(("（草稿，仅供双方确认，不作为签署文本）", 10, 0, 0))
    out.append((f"合同编号：{text.order_no}-V{text.version}    平台：{text.platform_name}", 9, 0, 0))
    out.append((f"甲方（委托方）：{text.enterprise_name}", 12, 6, 0))
    out.append((f"乙方（服务机构）：{text.provider_name}", 12, 0, 0))
    out.append((f"服务产品：{text.product_name}（{text.category}）", 12, 0, 0))
    out.append(("一、合同金额", 13, 6, 0))
    for label, fen in (
        ("合同总金额", text.total_fen),
        ("服务券抵扣", text.subsidy_fen),
        ("企业实付金额", text.payable_fen),
        ("合同定金", text.deposit_fen),
        ("合同尾款", text.balance_fen),
    ):
        out.append((_money_line(label, fen), 11, 0, 18))
    out.append(
        (
            "服务券抵扣部分由平台按规定向乙方兑付，甲方以对公转账方式向乙方支付实付金额：先付定金，服务完成后付清尾款。",
            10,
            0,
            18,
        )
    )
    out.append(("二、合同条款", 13, 6, 0))
    for paragraph in (text.terms or "").splitlines() or [""]:
        out.append((paragraph, 11, 0, 18))
    if text.agreed_at is not None:
        out.append((f"甲方于 {format_datetime(text.agreed_at)} 确认同意本合同条款。", 10, 6, 0))
    return out


def unprintable_in_contract(
    text: ContractText, *, font: str | None = None
) -> list[tuple[str, str, list[str]]]:
    """(field, label, characters) for each text of the contract that the font cannot show: the
    parties' names, the product's, its category, the terms, then anything else on the page."""
    found: list[tuple[str, str, list[str]]] = []
    for field, label, value, multiline in (
        ("enterprise_name", "甲方名称", text.enterprise_name, False),
        ("provider_name", "乙方名称", text.provider_name, False),
        ("product_name", "服务产品名称", text.product_name, False),
        ("category", "服务类别", text.category, False),
        ("terms", "合同条款", text.terms or "", True),
    ):
        if chars := unprintable(value, font=font, multiline=multiline):
            found.append((field, label, chars))
    page = "\n".join([TITLE, *SEAL_LABELS, *(line for line, *_ in contract_lines(text))])
    named = {ch for *_, chars in found for ch in chars}
    if rest := [ch for ch in unprintable(page, font=font, multiline=True) if ch not in named]:
        found.append(("document", "合同文本", rest))
    return found


def render_contract(text: ContractText, *, font: str | None = None, draft: bool = False) -> RenderedContract:
    """The contract as a PDF, with a box for each party's seal on its last page."""
    with _REPORTLAB:
        return _render_contract(text, font=font, draft=draft)


def _render_contract(text: ContractText, *, font: str | None, draft: bool) -> RenderedContract:
    face = _reportlab_font(str(font_path(font)))
    buf = io.BytesIO()
    width, height = A4
    margin = 56.0
    cv = canvas.Canvas(buf, pagesize=A4, invariant=0)
    cv.setTitle(f"服务合同 {text.order_no}")
    cv.setAuthor(text.platform_name)
    cv.setSubject(f"contract {text.contract_id} v{text.version}")
    y = height - margin

    def line(s: str, size: float = 11, gap: float = 6, indent: float = 0) -> None:
        nonlocal y
        for part in wrap(s, face, size, width - 2 * margin - indent):
            if y < margin + size:
                cv.showPage()
                y = height - margin
            cv.setFont(face, size)
            cv.drawString(margin + indent, y - size, part)
            y -= size + gap

    cv.setFont(face, 20)
    cv.drawCentredString(width / 2, y - 20, TITLE)
    y -= 44
    for s, size, gap_before, indent in contract_lines(text, draft=draft):
        y -= gap_before
        line(s, size, indent=indent)

    box = 130.0
    if y - box - 40 < margin:
        cv.showPage()
        y = height - margin
    cv.setFont(face, 12)
    cv.drawString(margin, y - 16, SEAL_LABELS[0])
    cv.drawString(width / 2 + 10, y - 16, SEAL_LABELS[1])
    top = y - 26
    page = cv.getPageNumber() - 1
    cv.showPage()
    cv.save()
    fields = [
        FieldBox("enterprise", page, (margin, top - box, margin + box, top)),
        FieldBox("provider", page, (width / 2 + 10, top - box, width / 2 + 10 + box, top)),
    ]
    return RenderedContract(buf.getvalue(), fields)
