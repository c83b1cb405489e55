"""Encrypted ID numbers: they come back, cannot be altered unnoticed, survive key rotation."""

from __future__ import annotations

import base64

import pytest

from common.crypto import (
    DEV_BLIND_INDEX_KEY,
    DEV_FIELD_KEY,
    DecryptionError,
    FieldCipher,
    blind_index,
    generate_key,
    key_fingerprint,
    key_list,
)

ID_NUMBER = "450102199001011231"


def test_round_trip() -> None:
    cipher = FieldCipher(generate_key())
    token = cipher.encrypt(ID_NUMBER)
    assert token.startswith("k1:")
    assert ID_NUMBER not in token
    assert cipher.decrypt(token) == ID_NUMBER


def test_round_trip_of_non_ascii_and_empty_text() -> None:
    cipher = FieldCipher(generate_key(), key_id="main")
    for text in ("张三丰", "", "H12345678"):
        token = cipher.encrypt(text)
        assert token.startswith("main:")
        assert cipher.decrypt(token) == text


def test_token_layout_is_key_id_then_base64_of_nonce_and_ciphertext() -> None:
    token = FieldCipher(generate_key()).encrypt(ID_NUMBER)
    key_id, body = token.split(":")
    raw = base64.b64decode(body, validate=True)
    assert key_id == "k1"
    assert len(raw) == 12 + len(ID_NUMBER) + 16  # nonce + ciphertext + GCM tag


def test_same_number_encrypts_differently_every_time() -> None:
    cipher = FieldCipher(generate_key())
    tokens = {cipher.encrypt(ID_NUMBER) for _ in range(1000)}
    nonces = {base64.b64decode(t.split(":")[1])[:12] for t in tokens}
    assert len(tokens) == 1000
    assert len(nonces) == 1000


def test_tampering_is_detected() -> None:
    cipher = FieldCipher(generate_key())
    key_id, body = cipher.encrypt(ID_NUMBER).split(":")
    raw = bytearray(base64.b64decode(body))
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt(f"{key_id}:{base64.b64encode(bytes(altered)).decode()}")
    with pytest.raises(DecryptionError):
        cipher.decrypt(f"{key_id}:{base64.b64encode(bytes(raw[:-1])).decode()}")  # truncated


@pytest.mark.parametrize("token", ["", "k1", "k1:", "k1:not base64!", "k1:AAAA", "k9:" + "A" * 60, ID_NUMBER])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(DecryptionError):
        FieldCipher(generate_key()).decrypt(token)


def test_another_key_cannot_decrypt() -> None:
    token = FieldCipher(generate_key()).encrypt(ID_NUMBER)
    with pytest.raises(DecryptionError):
        FieldCipher(generate_key()).decrypt(token)


def test_context_binds_a_token_to_its_column() -> None:
    cipher = FieldCipher(generate_key())
    token = cipher.encrypt(ID_NUMBER, context="person.id_number")
    assert cipher.decrypt(token, context="person.id_number") == ID_NUMBER
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context="agent.id_number")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token)


def test_rotation_decrypts_old_tokens_and_encrypts_with_the_new_key() -> None:
    old_key, new_key = generate_key(), generate_key()
    before = FieldCipher(old_key, key_id="k1")
    old_token = before.encrypt(ID_NUMBER)

    after = FieldCipher({"k1": old_key, "k2": new_key}, current="k2")
    new_token = after.encrypt(ID_NUMBER)
    assert new_token.startswith("k2:")
    assert after.decrypt(old_token) == ID_NUMBER
    assert after.decrypt(new_token) == ID_NUMBER
    assert after.needs_rotation(old_token)
    assert not after.needs_rotation(new_token)

    # Once every row is re-encrypted the old key can go; k1 tokens then no longer decrypt.
    retired = FieldCipher({"k2": new_key}, current="k2")
    assert retired.decrypt(new_token) == ID_NUMBER
    with pytest.raises(DecryptionError):
        retired.decrypt(old_token)


def test_bad_key_configuration_fails_at_start() -> None:
    with pytest.raises(ValueError):
        FieldCipher("not base64 !")
    with pytest.raises(ValueError):
        FieldCipher(base64.b64encode(b"too short").decode())
    with pytest.raises(ValueError):
        FieldCipher({"k1": generate_key(), "k2": generate_key()})  # which one encrypts?
    with pytest.raises(ValueError):
        FieldCipher({"k1": generate_key()}, current="k2")
    with pytest.raises(ValueError):
        FieldCipher({"k:1": generate_key()})
    with pytest.raises(ValueError):
        FieldCipher({})


def test_generated_keys_are_random_32_byte_base64() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(base64.b64decode(k, validate=True)) == 32 for k in keys)


def test_development_keys_work_and_are_marked() -> None:
    assert FieldCipher(DEV_FIELD_KEY).decrypt(FieldCipher(DEV_FIELD_KEY).encrypt(ID_NUMBER)) == ID_NUMBER
    assert b"development-only" in base64.b64decode(DEV_FIELD_KEY)
    assert b"development-only" in base64.b64decode(DEV_BLIND_INDEX_KEY)


def test_blind_index_finds_equal_numbers_only() -> None:
    key = generate_key()
    index = blind_index(ID_NUMBER, key)
    assert index == blind_index(ID_NUMBER, key)  # deterministic: usable in WHERE blind_index = ...
    assert index != blind_index("450102199001011247", key)
    assert index != blind_index(ID_NUMBER, generate_key())  # keyed: not a plain hash of the number
    assert len(index) == 64 and int(index, 16) >= 0
    assert ID_NUMBER not in index


def test_blind_index_matches_hmac_sha256() -> None:
    import hashlib
    import hmac

    raw = b"k" * 32
    expected = hmac.new(raw, ID_NUMBER.encode(), hashlib.sha256).hexdigest()
    assert blind_index(ID_NUMBER, raw) == expected
    assert blind_index(ID_NUMBER, base64.b64encode(raw).decode()) == expected


def test_blind_index_refuses_weak_keys() -> None:
    with pytest.raises(ValueError):
        blind_index(ID_NUMBER, b"short")


# --- the key ring the settings give: the current key plus the previous ones ---------------------


def test_a_key_ring_encrypts_with_the_current_key_and_decrypts_with_any() -> None:
    old_key, new_key = generate_key(), generate_key()
    old_token = FieldCipher.ring(old_key).encrypt(ID_NUMBER, context="c")
    legacy_token = FieldCipher(old_key).encrypt(ID_NUMBER, context="c")  # "k1:", before the ring

    ring = FieldCipher.ring(new_key, [old_key])
    new_token = ring.encrypt(ID_NUMBER, context="c")
    assert new_token.startswith(key_fingerprint(new_key) + ":")
    assert old_token.startswith(key_fingerprint(old_key) + ":")
    for token in (old_token, legacy_token, new_token):
        assert ring.decrypt(token, context="c") == ID_NUMBER
    assert ring.needs_rotation(old_token) and ring.needs_rotation(legacy_token)
    assert not ring.needs_rotation(new_token)

    # The old key removed, what it made no longer reads; what the new key made does.
    alone = FieldCipher.ring(new_key)
    assert alone.decrypt(new_token, context="c") == ID_NUMBER
    for token in (old_token, legacy_token):
        with pytest.raises(DecryptionError):
            alone.decrypt(token, context="c")


def test_a_key_fingerprint_names_the_key_without_revealing_it() -> None:
    key = generate_key()
    assert key_fingerprint(key) == key_fingerprint(key) != key_fingerprint(generate_key())
    assert ":" not in key_fingerprint(key) and key not in key_fingerprint(key)


@pytest.mark.parametrize(
    ("given", "keys"),
    [
        ("", []),
        ("a=, b=", ["a=", "b="]),
        (" a= ,,b=\n", ["a=", "b="]),
        ('["a=", "b="]', ["a=", "b="]),
        (["a=", "b="], ["a=", "b="]),
        (None, []),
    ],
)
def test_previous_keys_are_given_comma_separated_or_as_a_list(given: object, keys: list[str]) -> None:
    assert key_list(given) == keys
