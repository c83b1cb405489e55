"""Contracts's secrets: the development ones exist only in development."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.config import DEV_SEAL_KEY, Settings
from contracts.document import FontMissing, font_path, render_contract
from contracts.signing import SigningCA

CA = SigningCA.generate()
REAL = {
    "environment": "production",
    "service_token_secret": "a-real-service-token-secret-of-enough-length",
    "seal_key_encryption_key": "cmVhbC1wcm9kdWN0aW9uLXNlYWwta2V5LTMyYnl0ZSE=",
    "signing_ca_key_pem": CA.key_pem,
    "signing_ca_cert_pem": CA.cert_pem,
}


def test_production_starts_on_real_secrets() -> None:
    s = Settings(**REAL)
    assert s.seal_key_encryption_key == REAL["seal_key_encryption_key"]


@pytest.mark.parametrize(
    "change",
    [
        {"seal_key_encryption_key": None},
        {"seal_key_encryption_key": DEV_SEAL_KEY},
        {"signing_ca_key_pem": None, "signing_ca_cert_pem": None},
        {"signing_ca_cert_pem": None},
    ],
)
def test_production_refuses_missing_or_development_secrets(change: dict[str, Any]) -> None:
    values = {k: v for k, v in {**REAL, **change}.items() if v is not None}
    with pytest.raises(ValidationError):
        Settings(**values)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("c2hvcnQ=", "must be 32 random bytes"),  # 5 bytes: refused at start, not at the first seal
        ("not base64!", "must be base64"),
    ],
)
def test_a_seal_key_that_is_not_32_bytes_of_base64_is_refused_at_start(key: str, message: str) -> None:
    with pytest.raises(ValidationError, match=f"CONTRACTS_SEAL_KEY_ENCRYPTION_KEY {message}"):
        Settings(**{**REAL, "seal_key_encryption_key": key})


def test_development_falls_back_to_the_development_seal_key_and_a_generated_ca() -> None:
    s = Settings(environment="development")
    assert s.seal_key_encryption_key == DEV_SEAL_KEY and s.signing_ca_key_pem is None


def test_the_shipped_font_is_found_and_a_missing_one_is_a_clear_error(tmp_path: Any) -> None:
    assert font_path().suffix == ".ttf"
    with pytest.raises(FontMissing, match="CONTRACTS_PDF_FONT_PATH"):
        font_path(str(tmp_path / "none.ttf"))
    with pytest.raises(FontMissing):
        render_contract(None, font=str(tmp_path / "none.ttf"))  # type: ignore[arg-type]


def test_the_cli_makes_a_ca_and_verifies_a_signed_pdf_offline(tmp_path: Any, capsys: Any) -> None:
    from contracts.cli import main
    from contracts.document import ContractText, seal_png
    from contracts.signing import add_signature_fields, sign_pdf

    assert main(["make-ca", "--cert-out", str(tmp_path / "ca.pem")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('CONTRACTS_SIGNING_CA_KEY_PEM="-----BEGIN PRIVATE KEY-----\\n')
    ca = SigningCA.from_pem(
        lines[0].split("=", 1)[1].strip('"').replace("\\n", "\n"),
        lines[1].split("=", 1)[1].strip('"').replace("\\n", "\n"),
    )
    text = ContractText(
        "c", "ORD1", 1, "甲公司", "乙公司", "诊断", "企业诊断", 100, 0, 100, 0, 100, "条款", None, "平台"
    )
    rendered = render_contract(text)
    pdf = add_signature_fields(rendered.pdf, rendered.fields)
    issued = ca.issue("org", "甲公司")
    pdf = sign_pdf(
        pdf,
        field_name="enterprise",
        key_pem=issued.key_pem,
        cert_pem=issued.cert_pem,
        ca_cert_pem=ca.cert_pem,
        seal_png=seal_png("甲公司"),
        signer_name="甲公司",
    )
    (tmp_path / "c.pdf").write_bytes(pdf)
    assert main(["verify", str(tmp_path / "c.pdf"), "--ca", str(tmp_path / "ca.pem")]) == 0
    assert capsys.readouterr().out.startswith("OK enterprise: 甲公司")
    other = SigningCA.generate()
    (tmp_path / "other.pem").write_text(other.cert_pem)
    assert main(["verify", str(tmp_path / "c.pdf"), "--ca", str(tmp_path / "other.pem")]) == 1


def test_an_rsa_ca_from_settings_issues_certificates_that_validate_and_a_mismatched_pair_is_refused() -> None:
    from contracts.document import ContractText, seal_png
    from contracts.signing import add_signature_fields, sign_pdf, validate_pdf

    rsa_ca = SigningCA.generate(rsa_bits=2048)
    ca = SigningCA.from_pem(rsa_ca.key_pem, rsa_ca.cert_pem)
    issued = ca.issue("org", "乙公司")
    t = ContractText(
        "c", "ORD2", 1, "甲公司", "乙公司", "诊断", "企业诊断", 100, 0, 100, 0, 100, "条款", None, "平台"
    )
    rendered = render_contract(t)
    pdf = sign_pdf(
        add_signature_fields(rendered.pdf, rendered.fields),
        field_name="provider",
        key_pem=issued.key_pem,
        cert_pem=issued.cert_pem,
        ca_cert_pem=ca.cert_pem,
        seal_png=seal_png("乙公司"),
        signer_name="乙公司",
    )
    assert [c.bottom_line for c in validate_pdf(pdf, ca.cert_pem)] == [True]
    with pytest.raises(ValueError, match="not the CA key"):
        SigningCA.from_pem(rsa_ca.key_pem, CA.cert_pem)
