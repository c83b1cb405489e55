"""``voucher-contracts make-ca`` and ``generate-seal-key``: what they print is what contracts'
settings accept in production (deploy/env/contracts.secrets.env.example tells operators to use
them)."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from pydantic import ValidationError

from common.crypto import FieldCipher
from contracts.cli import main
from contracts.config import Settings
from contracts.signing import SigningCA

SERVICE_TOKEN_SECRET = "a-real-service-token-secret-of-enough-length"


def env_values(lines: list[str]) -> dict[str, str]:
    """KEY=VALUE lines as compose reads an env file: a double-quoted value's \\n is a newline."""
    values = {}
    for line in lines:
        key, _, value = line.partition("=")
        if value.startswith('"'):
            value = value[1 : value.rindex('"')].replace("\\n", "\n")
        values[key] = value
    return values


def production_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """contracts' settings read from the environment alone, as the container starts them."""
    for name in (
        "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY",
        "CONTRACTS_SIGNING_CA_KEY_PEM",
        "CONTRACTS_SIGNING_CA_CERT_PEM",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", SERVICE_TOKEN_SECRET)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def test_generate_seal_key_prints_a_fresh_aes_256_key(capsys: Any) -> None:
    assert main(["generate-seal-key"]) == 0
    first = capsys.readouterr().out
    assert main(["generate-seal-key"]) == 0
    second = capsys.readouterr().out
    assert first.endswith("\n") and first.count("\n") == 1, "one line: the value alone"
    key = first.strip()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert key != second.strip(), "a new random key each time"
    # The cipher the service builds from it at start accepts it.
    cipher = FieldCipher(key)
    assert cipher.decrypt(cipher.encrypt("seal key", context="c"), context="c") == "seal key"


def test_make_ca_and_generate_seal_key_make_settings_production_accepts(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["make-ca"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "CONTRACTS_SIGNING_CA_KEY_PEM",
        "CONTRACTS_SIGNING_CA_CERT_PEM",
    ]
    assert all(line.endswith('"') and "\n" not in line for line in lines), "one env line each, quoted"
    assert main(["generate-seal-key"]) == 0
    seal_key = capsys.readouterr().out.strip()
    env = {**env_values(lines), "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY": seal_key}

    settings = production_settings(monkeypatch, env)
    assert settings.is_development is False
    assert settings.seal_key_encryption_key == seal_key
    assert settings.signing_ca_key_pem is not None and settings.signing_ca_cert_pem is not None
    ca = SigningCA.from_pem(settings.signing_ca_key_pem, settings.signing_ca_cert_pem)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, "a CA certificate"

    # Production refuses the same environment without any one of the three.
    for missing in env:
        with pytest.raises(ValidationError):
            production_settings(monkeypatch, {k: v for k, v in env.items() if k != missing})


def test_make_ca_writes_the_pem_files_for_a_kubernetes_secret(capsys: Any, tmp_path: Path) -> None:
    key_file, cert_file = tmp_path / "ca-key.pem", tmp_path / "ca-cert.pem"
    key_file.write_text("old")
    key_file.chmod(0o644)
    assert main(["make-ca", "--key-out", str(key_file), "--cert-out", str(cert_file)]) == 0
    printed = env_values(capsys.readouterr().out.splitlines())
    assert key_file.read_text() == printed["CONTRACTS_SIGNING_CA_KEY_PEM"] + "\n"
    assert cert_file.read_text() == printed["CONTRACTS_SIGNING_CA_CERT_PEM"] + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, "the CA key is readable by its owner alone"
    SigningCA.from_pem(key_file.read_text(), cert_file.read_text())


def test_the_console_script_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed ``voucher-contracts`` (the command the env example names) does the same."""
    script = shutil.which("voucher-contracts", path=str(Path(sys.executable).parent))
    # uv sync installs it with the workspace: its absence is a packaging defect, not a skip
    assert script is not None, "voucher-contracts is not installed next to this interpreter"
    run = [script, "make-ca"], [script, "generate-seal-key"]
    ca, seal = (subprocess.run(a, capture_output=True, text=True, check=True, timeout=60).stdout for a in run)
    env = {**env_values(ca.splitlines()), "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY": seal.strip()}
    assert production_settings(monkeypatch, env).seal_key_encryption_key == seal.strip()
