"""``voucher-invariants``: check DESIGN.md's invariants over every service's database.

    voucher-invariants                      # URLs as the services read them
    voucher-invariants --quota-url postgresql://postgres@db:5432/quota ...
    voucher-invariants --postgres-url postgresql://postgres@db:5432 --verbose
    voucher-invariants --pushgateway http://pushgateway:9091   # also for Prometheus (export.py)

Each service's database comes from ``<SERVICE>_DATABASE_URL``, else ``POSTGRES_URL`` + the
service name (as the services themselves read it); a flag overrides either. Everything is read
in READ ONLY transactions. Prints each broken invariant with the ids involved and exits 1;
prints a one-line summary and exits 0 when all hold; exits 2 when the server cannot be
reached. A database (or a table) that does not exist yet is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from common.settings import database_in
from invariants import export
from invariants.checks import Report, check_all
from invariants.readers import SERVICES, Unreachable, read_all
from invariants.rows import DEFAULT_PROVIDER_CAP_FEN, Snapshot

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"


def database_urls(
    env: Mapping[str, str], postgres_url: str | None = None, overrides: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    server = postgres_url or env.get("POSTGRES_URL") or DEFAULT_POSTGRES_URL
    urls: dict[str, str] = {}
    for service in SERVICES:
        given = (overrides or {}).get(service)
        urls[service] = given or env.get(f"{service.upper()}_DATABASE_URL") or database_in(server, service)
    return urls


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voucher-invariants", description=__doc__.splitlines()[0])
    p.add_argument("--postgres-url", help="the server whose <service> databases are read (else POSTGRES_URL)")
    for service in SERVICES:
        p.add_argument(f"--{service}-url", help=f"{service}'s database (else {service.upper()}_DATABASE_URL)")
    p.add_argument(
        "--default-cap-fen",
        type=int,
        default=int(os.environ.get("QUOTA_DEFAULT_PROVIDER_CAP_FEN", DEFAULT_PROVIDER_CAP_FEN)),
        help="a provider's yearly cap when quota holds no row for it (quota's default)",
    )
    p.add_argument(
        "--pushgateway",
        help="also push the result to this Prometheus Pushgateway (else INVARIANTS_PUSHGATEWAY_URL)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also list the checks run and the rows read")
    return p


async def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = os.environ if env is None else env
    overrides = {s: getattr(args, f"{s}_url") for s in SERVICES}
    urls = database_urls(env, args.postgres_url, overrides)
    pushgateway = args.pushgateway or env.get("INVARIANTS_PUSHGATEWAY_URL")
    try:
        snapshot, results = await read_all(urls, Snapshot(default_cap_fen=args.default_cap_fen))
    except Unreachable as exc:
        print(f"voucher-invariants: cannot reach PostgreSQL ({exc})", file=sys.stderr)
        await _push(pushgateway, None)
        return 2
    report = check_all(snapshot)
    await _push(pushgateway, report)
    skipped = [res for res in results if not res.ok]
    for res in skipped:
        print(f"skipped {res.service}: {res.reason}")
    if args.verbose:
        for res in results:
            if res.ok:
                print(f"read {res.service}: " + ", ".join(f"{t} {n}" for t, n in res.counts.items()))
        for name in report.ran:
            print(f"checked {name}")
        for name, missing in report.skipped:
            print(f"not checked {name} (needs {', '.join(missing)})")
    for violation in report.violations:
        print(violation)
    read = ", ".join(res.service for res in results if res.ok) or "none"
    counts = (
        f"{len(snapshot.vouchers)} vouchers, {len(snapshot.orders)} orders, "
        f"{len(snapshot.contracts)} contracts, {len(snapshot.plans)} payment plans"
    )
    if report.ok:
        print(
            f"invariants hold: {len(report.ran)} checks over {counts} (read: {read}; {len(report.skipped)} checks skipped)"
        )
        return 0
    print(
        f"{len(report.violations)} invariant(s) broken: {len(report.ran)} checks over {counts} (read: {read})"
    )
    return 1


async def _push(url: str | None, report: Report | None) -> None:
    if url:
        try:
            await asyncio.to_thread(export.push, url, report)
        except OSError as exc:  # the result is still printed; the NotChecked alert will fire
            print(f"voucher-invariants: cannot push to {url} ({exc})", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(asyncio.run(run(argv)))


if __name__ == "__main__":
    main()
