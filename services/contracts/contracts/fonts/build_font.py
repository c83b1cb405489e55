"""Make NotoSansSC-Regular.ttf from Noto Sans SC's variable TrueType font (see README.md).

    uv run --frozen --with fonttools python build_font.py 'NotoSansSC[wght].ttf'

The variable font's default instance is Thin (wght 100) and reportlab reads only the default
outlines (it ignores ``gvar``), so the contract would be set in hairlines: this pins the
weight axis at Regular (400) and keeps every glyph and every character the font maps. It then
prints how much of GB 18030's hanzi the result covers.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from fontTools.ttLib import TTFont
from fontTools.varLib import instancer

OUT = Path(__file__).parent / "NotoSansSC-Regular.ttf"
RANGES = {
    "CJK Unified Ideographs U+4E00-9FFF": range(0x4E00, 0xA000),
    "CJK Extension A U+3400-4DBF": range(0x3400, 0x4DC0),
    "ASCII U+0020-007E": range(0x20, 0x7F),
    "CJK symbols and punctuation U+3000-303F": range(0x3000, 0x3040),
    "fullwidth forms U+FF01-FF5E": range(0xFF01, 0xFF5F),
}


def main(source: str) -> None:
    print("source", source, "sha256", hashlib.sha256(Path(source).read_bytes()).hexdigest())
    regular = instancer.instantiateVariableFont(TTFont(source), {"wght": 400}, updateFontNames=True)
    regular.save(OUT)
    cmap = TTFont(OUT).getBestCmap()
    print(OUT.name, OUT.stat().st_size, "bytes,", len(cmap), "characters")
    for name, codes in RANGES.items():
        missing = [c for c in codes if c not in cmap]
        print(f"  {name}: {len(codes) - len(missing)} of {len(codes)}", *(f"U+{c:04X}" for c in missing[:20]))
    gbk = [c for c in range(0x80, 0x10000) if _gbk(c) and c not in cmap]
    print("  GBK characters missing:", " ".join(f"U+{c:04X} {chr(c)}" for c in gbk) or "none")


def _gbk(code: int) -> bool:
    if 0xD800 <= code < 0xE000 or 0xE000 <= code < 0xF900:  # surrogates, private use
        return False
    try:
        chr(code).encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1])
