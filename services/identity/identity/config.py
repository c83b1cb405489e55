"""Identity's settings (env prefix ``IDENTITY_``; shared ones in common.settings)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from common.access import RETENTION as REVOCATION_RETENTION
from common.crypto import DEV_BLIND_INDEX_KEY, DEV_FIELD_KEY, PreviousKeys, setting_key
from common.settings import ServiceSettings
from identity.tokens import read_public_keys


class Settings(ServiceSettings):
    # hide_input_in_errors: a refused setting's error must not print the other settings' values
    # (the vendors' secrets, the signing key) into a start-up log.
    model_config = SettingsConfigDict(
        env_prefix="IDENTITY_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )
    service_name: ClassVar[str] = "identity"

    # Ed25519 private key (PEM) that signs access tokens. Required in production; in
    # development one is generated once and kept in the identity database.
    jwt_private_key: str | None = None
    # Public keys (PEM, one after another) the JWKS serves beside the signing key, verifying
    # only: the key rotated out, so that the tokens it signed verify until they expire, and
    # (the rotation's first step) the key about to sign. deploy/README.md, Operations, "Rotate
    # the JWT signing key".
    jwt_previous_public_keys: str | None = None
    access_ttl_seconds: int = 15 * 60
    refresh_ttl_seconds: int = 30 * 24 * 3600
    verification_token_ttl_seconds: int = 10 * 60

    # AES-GCM key (base64, 32 bytes) for ID numbers at rest; development falls back to a
    # fixed development key (see common.crypto).
    field_encryption_key: str | None = None
    # Keys rotated out (comma-separated): ID numbers they encrypted still decrypt, new ones are
    # encrypted with field_encryption_key. Kept until `voucher-identity reencrypt` has
    # rewritten every stored number (deploy/README.md, Operations).
    field_encryption_previous_keys: PreviousKeys = Field(default_factory=list)
    # HMAC key (base64, ≥ 32 bytes, not the encryption key) for SMS code hashes: a database dump alone cannot be used
    # to find codes. Development falls back to a fixed development key.
    hash_key: str | None = None

    # argon2id cost (OWASP's minimum: 19 MiB, 2 iterations, 1 lane).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    # Passwords hashed (or checked) at once by one process: each takes argon2_memory_kib, so
    # a burst of sign-ins waits for a slot instead of taking that memory N times over the
    # pod's limit. Size the memory limit for this many (2 x 19 MiB by default).
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Password sign-in: this many failures in a row lock the account for a while.
    login_max_failures: int = 10
    login_lock_seconds: int = 15 * 60

    captcha_ttl_seconds: int = 300
    sms_code_ttl_seconds: int = 300
    sms_max_attempts: int = 5
    sms_resend_seconds: int = 60
    sms_daily_cap_per_phone: int = 10
    sms_daily_cap_per_ip: int = 50
    # Providers of the outside world. Unset, they are the simulated ones in development and
    # "disabled" (the action answers 503) elsewhere; the simulated ones are refused in
    # production. A real SMS gateway / unified-authentication / face provider plugs in here.
    sms_provider: Literal["console", "aliyun", "tencent", "disabled"] | None = None
    enterprise_verifier: Literal["simulated", "qcc", "disabled"] | None = None
    face_verifier: Literal["simulated", "tencent", "aliyun", "disabled"] | None = None

    # SMS (aliyun: 阿里云短信服务 dysmsapi; tencent: 腾讯云短信). The signature (短信签名) and
    # one approved template per purpose; each template has one variable, the code
    # (aliyun: ${code}; tencent: {1}).
    sms_sign_name: str | None = None
    sms_template_register: str | None = None
    sms_template_login: str | None = None
    sms_template_certify: str | None = None
    sms_template_reset_password: str | None = None
    # Host[:port] of the vendor's API instead of the public one (a private endpoint; tests).
    sms_endpoint: str | None = None
    aliyun_access_key_id: SecretStr | None = None
    aliyun_access_key_secret: SecretStr | None = None
    tencent_secret_id: SecretStr | None = None
    tencent_secret_key: SecretStr | None = None
    tencent_region: str = "ap-guangzhou"
    tencent_sms_sdk_app_id: str | None = None

    # Face verification (tencent: 腾讯云人脸核身 FaceID, H5 flow). The RuleId agreed with
    # Tencent; where the phone's browser returns when the check is over ({verification_id}
    # is filled in; identity's public return route by default); where identity sends the
    # person after that return (the portal's page; {verification_id} is filled in).
    tencent_faceid_rule_id: str | None = None
    face_redirect_url: str | None = None
    face_portal_url: str | None = None
    # Host[:port] of the face vendor's API instead of the public one (a private endpoint; tests).
    faceid_endpoint: str | None = None
    # Face verification (aliyun: 阿里云金融级实人认证 cloudauth 2019-03-07, the H5/web flow with
    # the IDENTITY_ALIYUN_ACCESS_KEY_* of the SMS): the scene (认证场景) made in the console, the
    # product code of the scene's integration (ID_PRO: 金融级 H5/PC 网页) and the MetaInfo sent
    # for a page opened from a link (the vendor's web SDK would otherwise collect it).
    aliyun_face_scene_id: str | None = None
    aliyun_face_product_code: str = "ID_PRO"
    aliyun_face_meta_info: str = '{"deviceType":"h5"}'

    # Enterprise verification (qcc: 企查查开放平台, 企业三要素核验 ECIThreeElVerify): the
    # application's AppKey and SecretKey, and the API's base URL instead of the public one
    # (https://api.qichacha.com; a private endpoint; tests use host:port on 127.0.0.1).
    qcc_app_key: SecretStr | None = None
    qcc_secret_key: SecretStr | None = None
    qcc_endpoint: str | None = None

    # Calls to the vendors: how long one may take, and how many tries an outage gets.
    vendor_timeout_seconds: float = Field(default=5.0, gt=0)
    vendor_attempts: int = Field(default=3, ge=1, le=5)
    vendor_retry_wait_seconds: float = Field(default=0.2, ge=0)

    # Identity is reached only through the gateway, which sets X-Forwarded-For.
    trusted_proxy_hops: int = 1

    storage_url: str = "./data/files"
    max_upload_bytes: int = 10 * 1024 * 1024

    admin_phone: str | None = None
    admin_password: str | None = None
    admin_name: str = "平台管理员"

    # Development only: demo accounts printed by `make run`.
    seed_demo: bool = False

    @model_validator(mode="after")
    def _production_needs_real_providers(self) -> Settings:
        dev = self.is_development
        self.sms_provider = self.sms_provider or ("console" if dev else "disabled")
        self.enterprise_verifier = self.enterprise_verifier or ("simulated" if dev else "disabled")
        self.face_verifier = self.face_verifier or ("simulated" if dev else "disabled")
        if missing := self.missing_vendor_settings():
            # A vendor chosen is a vendor configured, in every environment. Names only: the
            # values (secrets among them) never reach a log.
            raise ValueError("settings missing for the chosen vendors: " + ", ".join(missing))
        if not dev:
            dev_only = {
                "IDENTITY_SMS_PROVIDER=console": self.sms_provider == "console",
                "IDENTITY_ENTERPRISE_VERIFIER=simulated": self.enterprise_verifier == "simulated",
                "IDENTITY_FACE_VERIFIER=simulated": self.face_verifier == "simulated",
                "IDENTITY_SEED_DEMO": self.seed_demo,
            }
            refused = [name for name, on in dev_only.items() if on]
            if refused:
                raise ValueError(
                    "development-only providers are refused outside ENVIRONMENT=development: "
                    + ", ".join(refused)
                )
            if not self.jwt_private_key:
                raise ValueError("IDENTITY_JWT_PRIVATE_KEY must be set outside ENVIRONMENT=development")
            if not self.field_encryption_key:
                raise ValueError("IDENTITY_FIELD_ENCRYPTION_KEY must be set outside ENVIRONMENT=development")
            if not self.hash_key:
                raise ValueError("IDENTITY_HASH_KEY must be set outside ENVIRONMENT=development")
            if self.field_encryption_key == DEV_FIELD_KEY or self.hash_key == DEV_BLIND_INDEX_KEY:
                raise ValueError(
                    "the development encryption keys cannot be used outside ENVIRONMENT=development"
                )
        self._keys_are_strong_and_distinct()
        read_public_keys(self.jwt_previous_public_keys)
        if self.access_ttl_seconds >= REVOCATION_RETENTION.total_seconds():
            # Every service forgets a revocation after common.access.RETENTION: no token may outlive it.
            raise ValueError(
                "IDENTITY_ACCESS_TTL_SECONDS must stay under "
                f"{int(REVOCATION_RETENTION.total_seconds())} (how long services keep a revocation)"
            )
        return self

    def sms_templates(self) -> dict[str, str | None]:
        """The SMS template of each purpose (schemas.auth: register, login, certify, reset_password)."""
        return {
            "register": self.sms_template_register,
            "login": self.sms_template_login,
            "certify": self.sms_template_certify,
            "reset_password": self.sms_template_reset_password,
        }

    def missing_vendor_settings(self) -> list[str]:
        """The names of the settings the chosen vendors need and do not have (never their values)."""
        needed: dict[str, object] = {}
        if self.sms_provider in ("aliyun", "tencent"):
            needed["IDENTITY_SMS_SIGN_NAME"] = self.sms_sign_name
            for purpose, template in self.sms_templates().items():
                needed[f"IDENTITY_SMS_TEMPLATE_{purpose.upper()}"] = template
        if self.sms_provider == "aliyun" or self.face_verifier == "aliyun":
            needed["IDENTITY_ALIYUN_ACCESS_KEY_ID"] = self.aliyun_access_key_id
            needed["IDENTITY_ALIYUN_ACCESS_KEY_SECRET"] = self.aliyun_access_key_secret
        if self.sms_provider == "tencent":
            needed["IDENTITY_TENCENT_SMS_SDK_APP_ID"] = self.tencent_sms_sdk_app_id
        if self.sms_provider == "tencent" or self.face_verifier == "tencent":
            needed["IDENTITY_TENCENT_SECRET_ID"] = self.tencent_secret_id
            needed["IDENTITY_TENCENT_SECRET_KEY"] = self.tencent_secret_key
            needed["IDENTITY_TENCENT_REGION"] = self.tencent_region
        if self.face_verifier == "tencent":
            needed["IDENTITY_TENCENT_FACEID_RULE_ID"] = self.tencent_faceid_rule_id
        if self.face_verifier == "aliyun":
            needed["IDENTITY_ALIYUN_FACE_SCENE_ID"] = self.aliyun_face_scene_id
            needed["IDENTITY_ALIYUN_FACE_PRODUCT_CODE"] = self.aliyun_face_product_code
        if self.enterprise_verifier == "qcc":
            needed["IDENTITY_QCC_APP_KEY"] = self.qcc_app_key
            needed["IDENTITY_QCC_SECRET_KEY"] = self.qcc_secret_key
        return [name for name, value in needed.items() if not _given(value)]

    def _keys_are_strong_and_distinct(self) -> None:
        """A key that is given must be usable and strong: refused at start, not a 500 at the
        first SMS (a 1-byte hash key) or a silent weakness (one key for both purposes)."""
        field_key = hash_key = None
        if self.field_encryption_key is not None:
            field_key = setting_key("IDENTITY_FIELD_ENCRYPTION_KEY", self.field_encryption_key)
        if self.hash_key is not None:
            hash_key = setting_key("IDENTITY_HASH_KEY", self.hash_key, at_least=True)
        if field_key is not None and field_key == hash_key:
            raise ValueError("IDENTITY_HASH_KEY must differ from IDENTITY_FIELD_ENCRYPTION_KEY")
        for previous in self.field_encryption_previous_keys:
            key = setting_key("IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS", previous)
            if key == hash_key:
                raise ValueError("IDENTITY_HASH_KEY must differ from IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS")


def _given(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and value.strip() != ""
