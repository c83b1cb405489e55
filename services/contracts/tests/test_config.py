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


def test_development_falls_back_to_the_development_seal_key_and_a_generated_ca() -> None:
    s = Settings(environment="development")
    assert s.seal_key_encryption_key == DEV_SEAL_KEY and s.signing_ca_key_pem is None


def test_the_shipped_font_is_found_and_a_missing_one_is_a_clear_error(tmp_path: Any) -> None:
    assert font_path().suffix == ".ttf"
    with pytest.raises(FontMissing, match="CONTRACTS_PDF_FONT_PATH"):
        font_path(str(tmp_path / "none.ttf"))
    with pytest.raises(FontMissing):
        render_contract(None, font=str(tmp_path / "none.ttf"))  # type: ignore[arg-type]
