"""Identity's tables (database ``identity``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from common.audit import AuditEntry  # noqa: F401 - identity's audit log is the common one


def new_id() -> str:
    return str(uuid.uuid4())


def ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if default_now else None
    )


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"
    __table_args__ = (
        Index("uq_organizations_uscc", "uscc", unique=True, postgresql_where=text("uscc IS NOT NULL")),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    uscc: str | None = Field(default=None, max_length=18)
    kind: str | None = Field(default=None, max_length=16)  # what it certified as: enterprise | provider
    certified_at: datetime | None = Field(default=None, sa_column=ts())
    is_provider: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    provider_since: datetime | None = Field(default=None, sa_column=ts())
    legal_rep_name: str | None = Field(default=None, max_length=100)
    legal_rep_id_type: str | None = Field(default=None, max_length=40)
    legal_rep_id_enc: str | None = Field(default=None, sa_column=Column(Text))
    legal_rep_id_masked: str | None = Field(default=None, max_length=40)
    suspended: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    suspended_reason: str | None = Field(default=None, sa_column=Column(Text))
    suspended_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))

    @property
    def certified(self) -> bool:
        return self.certified_at is not None

    @property
    def capabilities(self) -> list[str]:
        caps = []
        if self.certified:
            caps.append("enterprise")
        if self.is_provider:
            caps.append("provider")
        return caps


class User(SQLModel, table=True):
    """A person who signs in with a phone: an organisation's owner or agent, or staff."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_active_phone", "phone", unique=True, postgresql_where=text("active")),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    phone: str = Field(max_length=11, index=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=20)  # owner | agent | reviewer | finance | administrator
    organization_id: str | None = Field(
        default=None, sa_column=Column(String(36), ForeignKey("organizations.id"), nullable=True, index=True)
    )
    password_hash: str | None = Field(default=None, sa_column=Column(Text))
    id_number_enc: str | None = Field(default=None, sa_column=Column(Text))  # agents: their ID number
    id_number_masked: str | None = Field(default=None, max_length=40)
    id_type: str | None = Field(default=None, max_length=40)  # agents: the kind of that ID (0002)
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default="true"))
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    locked_until: datetime | None = Field(default=None, sa_column=ts())
    password_changed_at: datetime | None = Field(default=None, sa_column=ts())
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    created_by: str | None = Field(default=None, max_length=36)

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)


class RefreshToken(SQLModel, table=True):
    """One refresh token of a session family. Rotation marks it used and issues the next;
    presenting a used (or revoked) one revokes the whole family (reuse detection)."""

    __tablename__ = "refresh_tokens"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    family_id: str = Field(max_length=36, index=True)
    user_id: str = Field(sa_column=Column(String(36), ForeignKey("users.id"), nullable=False, index=True))
    token_hash: str = Field(max_length=64)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    expires_at: datetime = Field(sa_column=ts(False))
    used_at: datetime | None = Field(default=None, sa_column=ts())
    revoked_at: datetime | None = Field(default=None, sa_column=ts())


class Captcha(SQLModel, table=True):
    __tablename__ = "captchas"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    answer: str = Field(max_length=8)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    expires_at: datetime = Field(sa_column=ts(False))
    used_at: datetime | None = Field(default=None, sa_column=ts())


class SmsCode(SQLModel, table=True):
    """An SMS code sent: only its keyed hash is kept. Rows also count sends for the limits."""

    __tablename__ = "sms_codes"
    __table_args__ = (
        Index("ix_sms_codes_phone_created", "phone", "created_at"),
        Index("ix_sms_codes_ip_created", "client_ip", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    phone: str = Field(max_length=11)
    purpose: str = Field(max_length=20)
    code_hash: str = Field(max_length=64)
    client_ip: str = Field(max_length=64)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    expires_at: datetime = Field(sa_column=ts(False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    consumed_at: datetime | None = Field(default=None, sa_column=ts())


class DevSmsMessage(SQLModel, table=True):
    """What the console SMS provider 'sent' (development only; read by /dev/sms-codes)."""

    __tablename__ = "dev_sms_messages"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    phone: str = Field(max_length=11, index=True)
    purpose: str = Field(max_length=20)
    code: str = Field(max_length=8)
    sent_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class SigningKey(SQLModel, table=True):
    """Development signing keys (production reads its key from the environment)."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    private_pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class BankAccount(SQLModel, table=True):
    __tablename__ = "bank_accounts"

    organization_id: str = Field(
        sa_column=Column(String(36), ForeignKey("organizations.id"), primary_key=True)
    )
    account_name: str = Field(max_length=200)
    bank_name: str = Field(max_length=100)
    bank_region: str = Field(max_length=100)
    branch_name: str = Field(max_length=200)
    account_number: str = Field(max_length=40)
    updated_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    updated_by: str | None = Field(default=None, max_length=36)


class IdentityVerification(SQLModel, table=True):
    """A face check (人脸认证) for a purpose and object; passed, it yields a bound token."""

    __tablename__ = "identity_verifications"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(sa_column=Column(String(36), ForeignKey("users.id"), nullable=False, index=True))
    organization_id: str | None = Field(default=None, max_length=36)
    purpose: str = Field(max_length=20)  # seal | sign_contract
    object_id: str | None = Field(default=None, max_length=64)
    state: str = Field(default="pending", max_length=10)  # pending | passed | failed
    provider_ref: str | None = Field(default=None, max_length=100)
    # The vendor's page the person opens on a phone (shown again after a reload); none when simulated.
    vendor_url: str | None = Field(default=None, max_length=2000)
    # domain.verifications.subject_digest of the person the check was started for.
    subject_digest: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
    decided_at: datetime | None = Field(default=None, sa_column=ts())


class StoredFile(SQLModel, table=True):
    __tablename__ = "files"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    organization_id: str | None = Field(default=None, max_length=36, index=True)
    uploader_id: str = Field(max_length=36)
    name: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=300)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))


class FileGrant(SQLModel, table=True):
    """Another organisation may read a file because a deal names it (granted by a service)."""

    __tablename__ = "file_grants"

    file_id: str = Field(sa_column=Column(String(36), ForeignKey("files.id"), primary_key=True))
    organization_id: str = Field(primary_key=True, max_length=36)
    granted_by: str = Field(max_length=40)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime | None = Field(default=None, sa_column=ts(False, True))
