"""``voucher-contracts``: the platform's signing CA, its secrets and offline checks of signed contracts.

voucher-contracts make-ca                  # a new CA: the two env lines for the secrets file
voucher-contracts make-ca --key-out ca-key.pem --cert-out ca.pem   # also as PEM files
voucher-contracts generate-seal-key        # a new CONTRACTS_SEAL_KEY_ENCRYPTION_KEY (base64)
voucher-contracts reencrypt-seal-keys [--batch-size N]   # every stored key under the current one
voucher-contracts verify contract.pdf --ca ca.pem   # check every signature offline
voucher-contracts migrate [--lock-timeout 5s] [--statement-timeout 15min]   # the schema to head
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from common.crypto import generate_key
from common.migrate_command import add_migrate_command, run_migrate_command
from common.rekey import EncryptedColumn, reencrypt_command
from contracts.config import Settings
from contracts.context import ContractsContext
from contracts.service.seals import CA_KEY_CONTEXT, KEY_CONTEXT
from contracts.signing import SigningCA, validate_pdf

# Every column contracts keeps encrypted under CONTRACTS_SEAL_KEY_ENCRYPTION_KEY.
ENCRYPTED_COLUMNS = (
    EncryptedColumn("seals", "org_id", "private_key_enc", KEY_CONTEXT),
    EncryptedColumn("contract_signing_ca", "id", "key_enc", CA_KEY_CONTEXT),
)


def _env_line(name: str, pem: str) -> str:
    return f'{name}="' + pem.strip().replace("\n", "\\n") + '"'


def _write_private(path: Path, text: str) -> None:
    """Write a private key readable by its owner alone (0600 from creation, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _add_key_commands(sub: argparse._SubParsersAction) -> None:
    rekey = sub.add_parser(
        "reencrypt-seal-keys",
        help="rewrite the stored signing keys under the current CONTRACTS_SEAL_KEY_ENCRYPTION_KEY",
    )
    rekey.add_argument("--batch-size", type=int, default=200, help="rows per transaction")


async def reencrypt_seal_keys(batch_size: int) -> int:
    """One JSON line per column; 1 when a value no key of the ring decrypts was left as it was."""
    settings = Settings()
    cipher = ContractsContext(settings).cipher
    return await reencrypt_command(settings.db_url, cipher, ENCRYPTED_COLUMNS, batch_size=batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucher-contracts", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-ca", help="generate the signing CA (prints CONTRACTS_SIGNING_CA_* lines)")
    make.add_argument("--years", type=int, default=10)
    make.add_argument("--cert-out", type=Path, help="also write the CA certificate (PEM) here")
    make.add_argument("--key-out", type=Path, help="also write the CA private key (PEM, mode 0600) here")
    sub.add_parser(
        "generate-seal-key",
        help="print a new seal-key encryption key (base64 of 32 random bytes)",
    )
    _add_key_commands(sub)
    verify = sub.add_parser("verify", help="validate every signature of a contract PDF against the CA")
    verify.add_argument("pdf", type=Path)
    verify.add_argument("--ca", type=Path, required=True, help="the signing CA's certificate (PEM)")
    add_migrate_command(sub)
    args = parser.parse_args(argv)

    if args.command == "migrate":
        from contracts.main import MIGRATIONS

        return run_migrate_command("contracts", MIGRATIONS, args)
    if args.command == "make-ca":
        ca = SigningCA.generate(years=args.years)
        print(_env_line("CONTRACTS_SIGNING_CA_KEY_PEM", ca.key_pem))
        print(_env_line("CONTRACTS_SIGNING_CA_CERT_PEM", ca.cert_pem))
        if args.cert_out:
            args.cert_out.write_text(ca.cert_pem, encoding="utf-8")
        if args.key_out:
            _write_private(args.key_out, ca.key_pem)
        return 0
    if args.command == "generate-seal-key":
        print(generate_key())
        return 0
    if args.command == "reencrypt-seal-keys":
        return asyncio.run(reencrypt_seal_keys(args.batch_size))

    checks = validate_pdf(args.pdf.read_bytes(), args.ca.read_text(encoding="utf-8"))
    if not checks:
        print("no signature in the document", file=sys.stderr)
        return 1
    for c in checks:
        verdict = "OK" if c.bottom_line else "BROKEN"
        print(f"{verdict} {c.field_name}: {c.signer} intact={c.intact} valid={c.valid} trusted={c.trusted}")
    return 0 if all(c.bottom_line for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
