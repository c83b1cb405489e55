"""``voucher-orders``: operations on orders's database."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-orders", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
