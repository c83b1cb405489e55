"""Field encryption for personal data (ID numbers) and blind indexes to find them by equality.

ID numbers are stored encrypted (AES-256-GCM) so that a database dump or backup reveals none of
them. A token names the key that made it (``k2:...``), so keys can be rotated: a new key becomes
current for encryption while the old ones stay to decrypt until every row has been re-encrypted
(see :meth:`FieldCipher.needs_rotation`).

The services' settings give a key ring: the current key and the previous ones
(``IDENTITY_FIELD_ENCRYPTION_KEY`` + ``IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS``,
``CONTRACTS_SEAL_KEY_ENCRYPTION_KEY`` + ``CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS``);
:meth:`FieldCipher.ring` names each key by its fingerprint (:func:`key_fingerprint`), so a
token says which key made it. Tokens written before the ring carry ``k1:`` (a name, not a
fingerprint): those are tried against every key of the ring, the current one first (GCM tells
the right key from a wrong one). ``voucher-identity reencrypt`` and ``voucher-contracts
reencrypt-seal-keys`` (:mod:`common.rekey`) rewrite every stored token under the current key,
after which the previous keys can go.

Because GCM uses a random nonce, the same number encrypts differently every time and cannot be
searched for. Lookups ("is this ID number already registered?") use a blind index instead: an
HMAC of the normalized number under a separate key, stored next to the token. The HMAC key must
differ from the encryption keys and, unlike them, cannot be rotated without recomputing every
index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from typing import Annotated

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BeforeValidator
from pydantic_settings import NoDecode

KEY_BYTES = 32
NONCE_BYTES = 12  # the size GCM is specified for; random nonces are safe for < 2**32 messages a key

# DEVELOPMENT ONLY. Public in this repository, so anything encrypted with them is readable by
# anyone: never use them outside ENVIRONMENT=development (settings must refuse them elsewhere).
DEV_FIELD_KEY = base64.b64encode(b"development-only-field-key-32by!").decode()
DEV_BLIND_INDEX_KEY = base64.b64encode(b"development-only-blind-index-key").decode()


class DecryptionError(ValueError):
    """A token that cannot be decrypted: malformed, made with an unknown key, or tampered with."""


def generate_key() -> str:
    """A new random 256-bit key, base64-encoded, for settings (``FIELD_ENCRYPTION_KEY`` etc.)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def setting_key(name: str, value: str, *, at_least: bool = False) -> bytes:
    """A key given in setting ``name`` (base64 of ``KEY_BYTES`` random bytes, or at least that
    many with ``at_least``), decoded; a ValueError naming the setting otherwise, so a weak or
    mistyped key stops the service at start instead of failing at its first use."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{name} must be base64") from None
    if at_least and len(key) < KEY_BYTES:
        raise ValueError(f"{name} is too short: at least {KEY_BYTES} random bytes (base64), not {len(key)}")
    if not at_least and len(key) != KEY_BYTES:
        raise ValueError(f"{name} must be {KEY_BYTES} random bytes (base64), not {len(key)}")
    return key


def _decode_key(key_b64: str, *, size: int | None = KEY_BYTES) -> bytes:
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("key must be base64") from None
    if size is not None and len(key) != size:
        raise ValueError(f"key must be {size} bytes (base64 of {size} random bytes), not {len(key)}")
    return key


def key_fingerprint(key_b64: str) -> str:
    """A key's name in the tokens it makes: a keyed hash of the key (it reveals nothing of it),
    the same on every replica and in every release that is given the key."""
    digest = hashlib.sha256(b"voucher field key id\0" + _decode_key(key_b64)).hexdigest()
    return "f" + digest[:12]


def key_list(value: object) -> list[str]:
    """Previous keys as settings give them: comma-separated (or a JSON list) in the environment,
    a list in code; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [str(part).strip() for part in value if str(part).strip()]
    raise ValueError("keys must be comma-separated text or a list")


class FieldCipher:
    """AES-GCM encryption of a text field under named keys.

    ``FieldCipher(key_b64)`` uses one key named ``key_id``; ``FieldCipher({"k1": old, "k2": new},
    current="k2")`` encrypts with k2 and decrypts tokens of either key.

    ``context`` (optional, on both encrypt and decrypt) is authenticated but not stored: passing
    e.g. ``"identity.person.id_number"`` means a token copied into another column or table will
    not decrypt there.
    """

    def __init__(
        self, keys: str | Mapping[str, str], *, key_id: str = "k1", current: str | None = None
    ) -> None:
        named = {key_id: keys} if isinstance(keys, str) else dict(keys)
        if not named:
            raise ValueError("at least one key is needed")
        if current is None:
            if len(named) > 1:
                raise ValueError("several keys need current= to say which one encrypts")
            current = next(iter(named))
        if current not in named:
            raise ValueError(f"current key {current!r} is not among the keys")
        for name in named:
            if not name or ":" in name:
                raise ValueError(f"key id must be non-empty and without ':': {name!r}")
        self._keys = {name: AESGCM(_decode_key(value)) for name, value in named.items()}
        self.current = current
        # A ring (FieldCipher.ring) also reads tokens that name a key it does not know by that
        # name (``k1:``, written before keys were named by fingerprint), trying every key.
        self._try_every_key = False

    @classmethod
    def ring(cls, current: str, previous: Sequence[str] = ()) -> FieldCipher:
        """Encrypts with ``current``; decrypts with it or any of ``previous`` (base64 keys)."""
        named = {key_fingerprint(key): key for key in [*previous, current]}
        cipher = cls(named, current=key_fingerprint(current))
        # the current key first, then the previous ones, newest first
        order = [cipher.current] + [
            key_fingerprint(k) for k in previous if key_fingerprint(k) != cipher.current
        ]
        cipher._keys = {name: cipher._keys[name] for name in dict.fromkeys(order)}
        cipher._try_every_key = True
        return cipher

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """``"<key id>:" + base64(nonce + ciphertext + tag)``, a new random nonce every time."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """The plaintext, or :class:`DecryptionError` for anything that is not a genuine token."""
        key_id, _, body = token.partition(":") if isinstance(token, str) else ("", "", "")
        aead = self._keys.get(key_id)
        if aead is None and not (self._try_every_key and key_id):
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError("token is not base64") from None
        if len(raw) < NONCE_BYTES + 16:
            raise DecryptionError("token is too short")
        for candidate in [aead] if aead is not None else list(self._keys.values()):
            try:
                plain = candidate.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
            except InvalidTag:
                continue
            return plain.decode("utf-8")
        raise DecryptionError("token was altered, or made with another key or context")

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was made with a key other than the current one (re-encrypt it)."""
        return token.partition(":")[0] != self.current


def blind_index(value: str, key: str | bytes) -> str:
    """HMAC-SHA256 hex of ``value`` under ``key`` (base64 text, or raw bytes): an equality lookup key.

    Normalize first (e.g. with :func:`common.idnumbers.validate_id_number`), or "x" and "X"
    will not find each other. Use a key of its own, not an encryption key.
    """
    raw_key = key if isinstance(key, bytes) else _decode_key(key, size=None)
    if len(raw_key) < 16:
        raise ValueError("blind index key must be at least 16 bytes")
    return hmac.new(raw_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


# Settings' type for previous keys: ``X_PREVIOUS_KEYS="k2,k1"`` (or a JSON list) in the environment.
PreviousKeys = Annotated[list[str], NoDecode, BeforeValidator(key_list)]
