"""deploy/entrypoint.sh reads the application services' compose secret files
(/run/secrets/*.env; here a temporary folder named by VOUCHER_SECRETS_DIR) into the
environment of the process it starts, as compose read them as env files, and never through
the shell: run for real, with a stand-in uvicorn that writes the environment it was given."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import parse_env_file

SCRIPT = "deploy/entrypoint.sh"
UVICORN_ARGS = [
    "--factory",
    "identity.main:create_app",
    "--host",
    "0.0.0.0",
    "--port",
    "8001",
    "--no-proxy-headers",
    "--no-server-header",
    "--http",
    "common.serving:ProblemHttpToolsProtocol",
    "--timeout-graceful-shutdown",
    "10",
]

# What an operator may write: every kind of value compose took from an env file.
SHARED = (
    "# the shared secrets\n"
    "\n"
    "SERVICE_TOKEN_SECRET=pa$$w0rd$HOME`id`$(id)'\"x  y=z\n"
    "   # an indented comment\n"
    "#METRICS_TOKEN=commented-out\n"
    "METRICS_TOKEN=token # the scraper's\n"
)
OWN = (
    'IDENTITY_JWT_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\\nMC4CAQAw\\n-----END PRIVATE KEY-----"\n'
    "IDENTITY_ADMIN_PASSWORD='it''s $not expanded \\n'\n"
    "IDENTITY_HASH_KEY=a=b==\r\n"
    "IDENTITY_ADMIN_PHONE=\n"
    "IDENTITY_FIELD_ENCRYPTION_KEY=no-final-newline"
)


def run(
    root: Path,
    tmp_path: Path,
    secrets: dict[str, str] | None,
    *args: str,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str] | None, list[str] | None]:
    """The entrypoint with ``secrets`` (file name -> text; None: no folder at all): its run,
    the environment the stand-in uvicorn got and its arguments (None: it never ran)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "uvicorn").write_text(
        '#!/bin/sh\nenv -0 > "$ENV_OUT"\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n', encoding="utf-8"
    )
    (fake / "uvicorn").chmod(0o755)
    folder = tmp_path / "run-secrets"
    if secrets is not None:
        folder.mkdir(exist_ok=True)
        for name, text in secrets.items():
            (folder / name).write_bytes(text.encode())
    env_out, args_out = tmp_path / "env.out", tmp_path / "args.out"
    for out in (env_out, args_out):
        out.unlink(missing_ok=True)
    result = subprocess.run(
        ["sh", str(root / SCRIPT), *args],
        env={
            "PATH": f"{fake}:/usr/bin:/bin",
            "SERVICE": "identity",
            "PORT": "8001",
            "VOUCHER_SECRETS_DIR": str(folder),
            "ENV_OUT": str(env_out),
            "ARGS_OUT": str(args_out),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if not env_out.exists():
        return result, None, None
    pairs = (item.split("=", 1) for item in env_out.read_bytes().decode().split("\0") if item)
    return result, dict(pairs), args_out.read_text().splitlines()


def test_the_secret_files_arrive_byte_for_byte_as_compose_read_them(root: Path, tmp_path: Path) -> None:
    """`$`, backticks, quotes, spaces and `=` inside a value are the value's (nothing is
    expanded or run); a double-quoted value has its \\n turned into line breaks (a PEM), a
    single-quoted one is taken whole; comments and blank lines are skipped. What arrives is
    what compose read from these files as env files (conftest.parse_env_file)."""
    result, env, args = run(root, tmp_path, {"secrets.env": SHARED, "identity.secrets.env": OWN})
    assert result.returncode == 0, result.stderr
    assert env is not None and args == UVICORN_ARGS
    expected = {
        **parse_env_file(tmp_path / "run-secrets/secrets.env"),
        **parse_env_file(tmp_path / "run-secrets/identity.secrets.env"),
    }
    assert {key: env.get(key) for key in expected} == expected
    assert env["SERVICE_TOKEN_SECRET"] == "pa$$w0rd$HOME`id`$(id)'\"x  y=z"
    assert env["METRICS_TOKEN"] == "token"
    assert (
        env["IDENTITY_JWT_PRIVATE_KEY"] == "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----"
    )
    assert env["IDENTITY_ADMIN_PASSWORD"] == "it''s $not expanded \\n"
    assert env["IDENTITY_HASH_KEY"] == "a=b=="
    assert env["IDENTITY_ADMIN_PHONE"] == ""
    assert env["IDENTITY_FIELD_ENCRYPTION_KEY"] == "no-final-newline"
    assert not {key for key in env if key.startswith("voucher_")}, "the loader's own variables stay its own"


def test_the_pem_keys_pasted_as_the_examples_say_arrive_as_pem(root: Path, tmp_path: Path) -> None:
    """`voucher-contracts make-ca` prints the two lines to paste in contracts.secrets.env (its
    example says so): the key and the certificate arrive as PEM, and load."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    script = shutil.which("voucher-contracts", path=str(Path(sys.executable).parent))
    assert script, f"voucher-contracts is not installed next to {sys.executable}"
    output = subprocess.run(
        [script, "make-ca"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    result, env, _ = run(root, tmp_path, {"contracts.secrets.env": output})
    assert result.returncode == 0, result.stderr
    assert env is not None
    load_pem_private_key(env["CONTRACTS_SIGNING_CA_KEY_PEM"].encode(), password=None)
    x509.load_pem_x509_certificate(env["CONTRACTS_SIGNING_CA_CERT_PEM"].encode())


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("A=1\n\nhunter2-the-value\n", 3, "not a KEY=VALUE line"),
        ("# c\n9KEY=hunter2-the-value\n", 2, "not a KEY=VALUE line"),
        ("KEY NAME=hunter2-the-value\n", 1, "not a KEY=VALUE line"),
        ("export KEY=hunter2-the-value\n", 1, "not a KEY=VALUE line"),
        ('A=1\nKEY="hunter2-the-value\n', 2, "KEY: no closing double quote"),
        ("KEY='hunter2-the-value\n", 1, "KEY: no closing single quote"),
        ('KEY="hunter2"-the-value\n', 1, "KEY: text after the closing double quote"),
        ("IFS=hunter2-the-value\n", 1, "IFS is the shell's own name"),
    ],
)
def test_a_malformed_line_stops_the_start_naming_the_file_and_line_not_the_value(
    root: Path, tmp_path: Path, text: str, line: int, message: str
) -> None:
    result, env, _ = run(root, tmp_path, {"identity.secrets.env": text})
    assert result.returncode != 0 and env is None, "uvicorn must not start"
    assert f"{tmp_path}/run-secrets/identity.secrets.env:{line}: {message}" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("secrets", "env", "where"),
    [
        ({"a.env": "KEY=hunter2-a\n", "b.env": "KEY=hunter2-b\n"}, {}, "b.env:1"),  # in two files
        ({"a.env": "X=1\nKEY=hunter2-a\nKEY=hunter2-b\n"}, {}, "a.env:3"),  # twice in one
        ({"a.env": "ENVIRONMENT=hunter2\n"}, {"ENVIRONMENT": "production"}, "a.env:1"),
        ({"a.env": "PATH=/tmp/hunter2\n"}, {}, "a.env:1"),  # the image's own
    ],
)
def test_a_variable_comes_from_one_place(
    root: Path, tmp_path: Path, secrets: dict[str, str], env: dict[str, str], where: str
) -> None:
    """A secret file cannot override the container's environment (production.env, compose's
    `environment: ENVIRONMENT: production`, the image's PATH) nor another secret file: which
    one would win is no question an operator should have to answer."""
    result, started, _ = run(root, tmp_path, secrets, env=env)
    assert result.returncode != 0 and started is None
    assert f"run-secrets/{where}: " in result.stderr and "is already set" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_without_secret_files_it_starts_as_before(root: Path, tmp_path: Path) -> None:
    """Kubernetes (its Secrets are environment variables) and any container without secrets:
    no folder, or none of its files a *.env (a Kubernetes service-account folder)."""
    result, env, args = run(root, tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert args == UVICORN_ARGS and env is not None
    before = set(env)
    (tmp_path / "run-secrets/kubernetes.io/serviceaccount").mkdir(parents=True)
    result, env, args = run(root, tmp_path, {"token": "KEY=1\n", ".hidden.env": "KEY=1\n"})
    assert result.returncode == 0, result.stderr
    assert args == UVICORN_ARGS and env is not None and set(env) == before


def test_a_secret_file_missing_on_the_host_stops_the_start(root: Path, tmp_path: Path) -> None:
    """Compose v1 mounts a secret whose file does not exist as an empty directory."""
    (tmp_path / "run-secrets/identity.secrets.env").mkdir(parents=True)
    result, env, _ = run(root, tmp_path, {})
    assert result.returncode != 0 and env is None
    assert "identity.secrets.env: not a file" in result.stderr


def test_a_command_runs_with_the_secrets_and_arguments_go_to_uvicorn(root: Path, tmp_path: Path) -> None:
    """`docker compose exec identity voucher-entrypoint voucher-identity reencrypt`: a command
    in place of uvicorn, with the secrets; `voucher-entrypoint --workers 2`: uvicorn's."""
    secrets = {"identity.secrets.env": "IDENTITY_HASH_KEY=k$y\n"}
    result, _, _ = run(root, tmp_path, secrets, "sh", "-c", 'printf "%s" "$IDENTITY_HASH_KEY"')
    assert (result.returncode, result.stdout) == (0, "k$y"), result.stderr
    result, env, args = run(root, tmp_path, secrets, "--workers", "2")
    assert result.returncode == 0 and env is not None and env["IDENTITY_HASH_KEY"] == "k$y"
    assert args == [*UVICORN_ARGS, "--workers", "2"]


def test_the_image_reads_them_from_run_secrets(root: Path) -> None:
    """Compose mounts a short-syntax secret as /run/secrets/<name>: the entrypoint's default."""
    script = (root / SCRIPT).read_text(encoding="utf-8")
    assert "voucher_dir=${VOUCHER_SECRETS_DIR:-/run/secrets}" in script
    assert ". " not in {line.strip()[:2] for line in script.splitlines()}, "never sourced"
    assert "eval" not in script.split()
