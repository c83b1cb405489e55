"""Write chars.txt: the characters the shipped font keeps (see README.md beside this file)."""

from __future__ import annotations


def characters() -> set[str]:
    """ASCII, GB 2312 (levels 1 and 2 and its symbols), CJK punctuation and fullwidth forms."""
    chars = {chr(c) for c in range(0x20, 0x7F)}
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    chars |= {chr(c) for c in range(0x3000, 0x3040)} | {chr(c) for c in range(0xFF00, 0xFFF0)}
    return chars | set("·—‘’“”…￥")


if __name__ == "__main__":
    with open("chars.txt", "w", encoding="utf-8") as f:
        f.write("".join(sorted(characters())))
