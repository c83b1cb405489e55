"""What identity's routes need besides the request, set up once at start (``bootstrap``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import argon2
from captcha.image import ImageCaptcha

from common.crypto import FieldCipher
from common.storage import FileStorage
from identity import tokens
from identity.adapters import EnterpriseVerifier, FaceVerifier, SmsProvider
from identity.config import Settings


@dataclass
class IdentityContext:
    """Everything identity's routes need besides the request: set up once at start."""

    settings: Settings
    signer: tokens.Signer
    sms: SmsProvider
    enterprise_verifier: EnterpriseVerifier
    face_verifier: FaceVerifier
    cipher: FieldCipher
    hash_key: str
    storage: FileStorage
    hasher: argon2.PasswordHasher = field(init=False)
    captcha_image: ImageCaptcha = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.hasher = argon2.PasswordHasher(
            time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib, parallelism=s.argon2_parallelism
        )
        self.captcha_image = ImageCaptcha(width=120, height=48)
