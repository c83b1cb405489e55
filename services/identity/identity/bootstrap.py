"""What identity does when it starts: its signing key, its providers, the first administrator."""

from __future__ import annotations

import structlog

from common.app import ServiceRuntime
from common.crypto import DEV_BLIND_INDEX_KEY, DEV_FIELD_KEY, FieldCipher
from common.storage import storage_from_url
from identity import tokens
from identity.adapters.enterprise import enterprise_verifier
from identity.adapters.face import face_verifier
from identity.adapters.sms import sms_provider
from identity.config import Settings
from identity.context import IdentityContext
from identity.models import User
from identity.service import auth as service

log = structlog.get_logger(__name__)


def field_cipher(settings: Settings) -> FieldCipher:
    """The ID numbers' key ring: the current key encrypts, the previous ones still decrypt."""
    return FieldCipher.ring(
        settings.field_encryption_key or DEV_FIELD_KEY, settings.field_encryption_previous_keys
    )


async def build_context(runtime: ServiceRuntime) -> IdentityContext:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    async with runtime.db.session() as session:
        signer = await tokens.load_signer(
            session,
            settings.jwt_private_key,
            allow_generate=settings.is_development,
            previous_public_keys=settings.jwt_previous_public_keys,
        )
    for kid, public_key in signer.verifying_keys().items():
        runtime.key_set.add(kid, public_key)
    return IdentityContext(
        settings=settings,
        signer=signer,
        sms=sms_provider(settings.sms_provider, settings),
        enterprise_verifier=enterprise_verifier(settings.enterprise_verifier, settings),
        face_verifier=face_verifier(settings.face_verifier, settings),
        cipher=field_cipher(settings),
        hash_key=settings.hash_key or DEV_BLIND_INDEX_KEY,
        storage=storage_from_url(settings.storage_url),
    )


async def ensure_administrator(
    ctx: IdentityContext, runtime: ServiceRuntime, phone: str, password: str, name: str
) -> bool:
    """Create the administrator ``phone`` unless an active account has that phone."""
    await service.require_strong(password, phone, [name], field="password")
    async with runtime.db.transaction() as session:
        if await service.active_user_by_phone(session, phone) is not None:
            return False
        session.add(
            User(
                phone=phone,
                name=name,
                role="administrator",
                password_hash=await service.hash_password(ctx, password),
            )
        )
    log.info("administrator_created", role="administrator")
    return True
