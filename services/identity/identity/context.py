"""What identity's routes need besides the request, set up once at start (``bootstrap``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import argon2
from captcha.image import ImageCaptcha

from common.crypto import FieldCipher
from common.storage import FileStorage
from identity import tokens
from identity.adapters.enterprise import EnterpriseVerifier
from identity.adapters.face import FaceVerifier
from identity.adapters.sms import SmsProvider
from identity.config import Settings


@dataclass
class IdentityContext:
    """Everything identity's routes need besides the request: set up once at start."""

    settings: Settings
    signer: tokens.KeyRing
    sms: SmsProvider
    enterprise_verifier: EnterpriseVerifier
    face_verifier: FaceVerifier
    cipher: FieldCipher
    hash_key: str
    storage: FileStorage
    hasher: argon2.PasswordHasher = field(init=False)
    # The threads argon2 runs in: IDENTITY_PASSWORD_HASH_CONCURRENCY of them, so no more
    # hashes than that hold their memory at once (service.auth; the rest wait their turn).
    hashing: ThreadPoolExecutor = field(init=False)
    captcha_image: ImageCaptcha = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.hasher = argon2.PasswordHasher(
            time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib, parallelism=s.argon2_parallelism
        )
        self.hashing = ThreadPoolExecutor(
            max_workers=s.password_hash_concurrency, thread_name_prefix="argon2"
        )
        self.captcha_image = ImageCaptcha(width=120, height=48)

    def close(self) -> None:
        self.hashing.shutdown(wait=False, cancel_futures=True)
