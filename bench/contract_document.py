"""What the contract document costs: the font's first load, rendering the agreed PDF, a seal,
and the two PAdES signatures, and the PDF's size. No database or broker: the functions that
contracts' routes call (in a worker thread), called directly.

    uv run --frozen python bench/contract_document.py
    uv run --frozen python bench/contract_document.py --font /path/to/other.ttf --rounds 10 --json out.json

The contract is the usual one (the amounts, a page of terms in GB 2312 hanzi); ``--rare`` puts
hanzi outside GB 2312 and Extension A in its names and terms. Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts import document, signing

TERMS = (
    "第一条 服务内容：乙方为甲方提供企业数字化诊断服务，包括现状调研、问题诊断和改进方案。\n"
    "第二条 服务期限：自合同签订之日起六十日内完成。\n"
    "第三条 付款方式：甲方以对公转账方式先付定金，服务完成并经甲方确认后付清尾款。\n"
    "第四条 服务券：服务券抵扣部分由平台按规定向乙方兑付，甲方不得要求以现金兑付。\n"
    "第五条 违约责任：任何一方违约的，应赔偿对方因此遭受的直接损失。\n"
    "第六条 争议解决：双方协商不成的，提交甲方所在地人民法院诉讼解决。\n"
) * 3
RARE_TERMS = "第七条 乙方無須退還已收款項。\n第八条 甲方代表：王㐀；乙方代表：李䶵。\n"


def timed(fn: Callable[[], Any], rounds: int) -> tuple[Any, dict[str, float]]:
    """``fn()``'s result and its median wall and CPU milliseconds over ``rounds`` calls (the work
    is single-threaded, so CPU time is the steadier figure on a shared machine)."""
    result = None
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return result, {
        "median_ms": round(statistics.median(wall), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", help="a TrueType font instead of the shipped one")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rare", action="store_true", help="names and terms beyond GB 2312")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    enterprise, provider = "广西测试制造有限公司", "南宁数字化服务中心"
    terms = TERMS
    if args.rare:
        enterprise, provider, terms = "广西堃喆赟制造有限公司", "南宁昇镕玥珺祎瑄服务中心", TERMS + RARE_TERMS
    text = document.ContractText(
        "c", "ORD261201220000123", 1, enterprise, provider, "企业数字化诊断服务", "数字化转型",
        30_000_000, 9_000_000, 21_000_000, 6_000_000, 15_000_000, terms, datetime.now(UTC),
        "广西制造业企业培优育强服务券管理平台",
    )  # fmt: skip

    path = str(document.font_path(args.font))
    # the font's first load (reportlab parses it once per process) happens here
    _, first = timed(lambda: document.render_contract(text, font=args.font), 1)

    def agreed() -> bytes:
        rendered = document.render_contract(text, font=args.font)
        return signing.add_signature_fields(rendered.pdf, rendered.fields)

    pdf, render_times = timed(agreed, args.rounds)
    seals, seal_times = timed(
        lambda: (document.seal_png(enterprise, font=args.font), document.seal_png(provider, font=args.font)),
        args.rounds,
    )
    ca = signing.SigningCA.generate()
    certs = [ca.issue(str(i), name) for i, name in enumerate((enterprise, provider))]

    def both_signed() -> bytes:
        out = pdf
        for party, cert, seal, name in zip(
            ("enterprise", "provider"), certs, seals, (enterprise, provider), strict=True
        ):
            out = signing.sign_pdf(
                out,
                field_name=party,
                key_pem=cert.key_pem,
                cert_pem=cert.cert_pem,
                ca_cert_pem=ca.cert_pem,
                seal_png=seal,
                signer_name=name,
            )
        return out

    signed, sign_times = timed(both_signed, args.rounds)
    figures = {
        "font": path,
        "rare": args.rare,
        "first_render_with_font_load": first,
        "render_agreed": render_times,
        "two_seals": seal_times,
        "two_signatures": sign_times,
        "agreed_pdf_bytes": len(pdf),
        "signed_pdf_bytes": len(signed),
        "seal_png_bytes": [len(s) for s in seals],
    }
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
