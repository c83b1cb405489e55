"""``voucher-catalog``: operations on catalog's database."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-catalog", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
