"""What contracts's routes need besides the request, set up once at start (``main``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from common.crypto import FieldCipher
from contracts import errors, signing
from contracts.config import Settings


@dataclass
class ContractsContext:
    """What contracts's routes need besides the request: set up once at start."""

    settings: Settings
    cipher: FieldCipher = field(init=False)
    ca: signing.SigningCA | None = None
    # How many uploaded PDFs POST /contracts/verify checks at once (each is CPU in a thread).
    verify_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        assert self.settings.seal_key_encryption_key is not None
        # the current key encrypts; the previous ones (a rotation under way) still decrypt
        self.cipher = FieldCipher.ring(
            self.settings.seal_key_encryption_key, self.settings.seal_key_encryption_previous_keys
        )
        self.verify_slots = asyncio.Semaphore(self.settings.verify_concurrency)

    def require_ca(self) -> signing.SigningCA:
        if self.ca is None:
            raise errors.signing_unavailable()
        return self.ca
