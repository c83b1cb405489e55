"""contracts's settings (env prefix ``CONTRACTS_``; shared ones in common.settings).

Secrets (refused in production when missing or when they are the development ones):

- ``CONTRACTS_SEAL_KEY_ENCRYPTION_KEY``: AES-256-GCM key (base64 of 32 bytes) under which the
  organisations' signing keys are kept at rest; ``CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS``
  (comma-separated) the keys rotated out, which still decrypt until ``voucher-contracts
  reencrypt-seal-keys`` has rewritten every seal key (deploy/README.md, Operations);
- ``CONTRACTS_SIGNING_CA_KEY_PEM`` / ``CONTRACTS_SIGNING_CA_CERT_PEM``: the platform's signing
  CA, which issues each organisation its certificate when it makes its seal. In development,
  when unset, one is generated once and kept in the contracts database.
"""

from __future__ import annotations

import base64
from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from common.crypto import PreviousKeys, setting_key
from common.settings import ServiceSettings

# DEVELOPMENT ONLY: public in this repository; refused outside ENVIRONMENT=development.
DEV_SEAL_KEY = base64.b64encode(b"contracts-dev-only-seal-key-32b!").decode()


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONTRACTS_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "contracts"

    seal_key_encryption_key: str | None = None
    seal_key_encryption_previous_keys: PreviousKeys = Field(default_factory=list)
    signing_ca_key_pem: str | None = None
    signing_ca_cert_pem: str | None = None
    # Years an organisation's signing certificate is valid.
    seal_certificate_years: int = 5
    # A TrueType font (or collection: its first face) for the contract PDF and the seals, with
    # glyf outlines (reportlab cannot embed CFF ones: no .otf); default: the one shipped in
    # contracts/fonts, Noto Sans SC Regular, which has every hanzi of GB 18030 (CJK Unified
    # Ideographs and Extension A). Text this font has no glyph for is refused (422
    # text_not_printable) before it reaches a document or a seal, so a narrower font refuses more.
    pdf_font_path: str | None = None
    platform_name: str = "广西制造业企业培优育强服务券管理平台"
    # POST /contracts/verify is public and CPU-heavy (pyHanko's difference analysis of the
    # whole file): the largest PDF it takes (a signed contract is well under 1 MB; the
    # gateway's limit for the path is 11 MB), and how many it checks at once per process
    # (others wait up to verify_wait_seconds, then get a 503 verification_busy).
    verify_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024)
    verify_concurrency: int = Field(default=2, ge=1)
    verify_wait_seconds: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _contract_secrets(self) -> Settings:
        if self.seal_key_encryption_key is None:
            if not self.is_development:
                raise ValueError(
                    "CONTRACTS_SEAL_KEY_ENCRYPTION_KEY must be set outside ENVIRONMENT=development"
                )
            self.seal_key_encryption_key = DEV_SEAL_KEY
        elif self.seal_key_encryption_key == DEV_SEAL_KEY and not self.is_development:
            raise ValueError("the development seal key cannot be used in production")
        setting_key("CONTRACTS_SEAL_KEY_ENCRYPTION_KEY", self.seal_key_encryption_key)
        for previous in self.seal_key_encryption_previous_keys:
            setting_key("CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS", previous)
        if not self.is_development and not (self.signing_ca_key_pem and self.signing_ca_cert_pem):
            raise ValueError(
                "CONTRACTS_SIGNING_CA_KEY_PEM and CONTRACTS_SIGNING_CA_CERT_PEM must be set outside "
                "ENVIRONMENT=development"
            )
        if bool(self.signing_ca_key_pem) != bool(self.signing_ca_cert_pem):
            raise ValueError("CONTRACTS_SIGNING_CA_KEY_PEM and CONTRACTS_SIGNING_CA_CERT_PEM go together")
        return self
