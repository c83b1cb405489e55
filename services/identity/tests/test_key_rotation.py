"""Rotating identity's keys without signing anyone out or losing a stored ID number.

- the JWT signing key: the new key signs, and the JWKS serves the previous public keys too
  (``IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS``), so a token signed before the rotation keeps
  verifying in the gateway and the services until it expires;
- the field-encryption key: a key ring (``IDENTITY_FIELD_ENCRYPTION_KEY`` plus
  ``IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS``) decrypts with any of its keys and encrypts with
  the current one; ``voucher-identity reencrypt`` rewrites the stored values under it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlmodel import select

from common.auth import KeySet, TokenVerifier
from common.crypto import FieldCipher, generate_key
from common.errors import Problem
from common.testing.api_client import ApiDriver
from common.testing.infra import MakeDb
from identity import tokens
from identity.domain.organizations import LEGAL_REP_ID_CONTEXT
from identity.models import Organization

from .conftest import Flows, make_resident_id
from .test_cli import cli_env, run_cli

MakeIdentity = Callable[..., Awaitable[FastAPI]]


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity")


def verifier_through_jwks(app: FastAPI) -> TokenVerifier:
    """What the gateway and every service do: identity's public keys from its JWKS."""
    keys = KeySet("http://identity/.well-known/jwks.json", client=client_of(app), min_refresh_interval=0)
    return TokenVerifier(keys, issuer="voucher-identity", audience="voucher-platform", cache_size=0)


async def test_a_token_signed_before_a_rotation_verifies_until_it_expires(
    make_identity: MakeIdentity, fresh_db: MakeDb
) -> None:
    old, new, stranger = (Ed25519PrivateKey.generate() for _ in range(3))
    url = await fresh_db("identity", schema="identity")
    before = await make_identity(database_url=url, jwt_private_key=tokens.private_pem(old))
    async with client_of(before) as c:
        signed_before = (await ApiDriver(c).register()).access_token

    # The rotation: the new key signs, the old public key stays in the JWKS for the overlap.
    after = await make_identity(
        database_url=url,
        jwt_private_key=tokens.private_pem(new),
        jwt_previous_public_keys=public_pem(old),
    )
    async with client_of(after) as c:
        jwks = (await c.get("/.well-known/jwks.json")).json()["keys"]
        assert {k["kid"] for k in jwks} == {
            tokens.key_id(old.public_key()),
            tokens.key_id(new.public_key()),
        }
        assert all("d" not in k for k in jwks)
        signed_after = (await ApiDriver(c).register()).access_token
        assert jwt.get_unverified_header(signed_after)["kid"] == tokens.key_id(new.public_key())
        # identity itself still takes the old token
        me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {signed_before}"})
        assert me.status_code == 200, me.text

    verifier = verifier_through_jwks(after)
    for token in (signed_before, signed_after):
        assert (await verifier.decode(token))["typ"] == "access"

    # A token signed with a key identity never had (same claims, its own kid) is refused.
    claims: dict[str, Any] = jwt.decode(signed_before, options={"verify_signature": False})
    forged = tokens.Signer(stranger, tokens.key_id(stranger.public_key())).sign(claims)
    with pytest.raises(Problem) as refused:
        await verifier.decode(forged)
    assert refused.value.code == "token_invalid"
    # ... and so is one that names the old kid but is signed with another key.
    impostor = jwt.encode(
        {**claims, "jti": str(uuid.uuid4()), "exp": int(time.time()) + 60},
        stranger,
        algorithm="EdDSA",
        headers={"kid": tokens.key_id(old.public_key())},
    )
    with pytest.raises(Problem) as refused:
        await verifier.decode(impostor)
    assert refused.value.code == "token_invalid"


async def test_once_the_overlap_is_over_the_old_key_is_refused(
    make_identity: MakeIdentity, fresh_db: MakeDb
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    url = await fresh_db("identity", schema="identity")
    before = await make_identity(database_url=url, jwt_private_key=tokens.private_pem(old))
    async with client_of(before) as c:
        signed_before = (await ApiDriver(c).register()).access_token
    after = await make_identity(database_url=url, jwt_private_key=tokens.private_pem(new))
    with pytest.raises(Problem) as refused:
        await verifier_through_jwks(after).decode(signed_before)
    assert refused.value.code == "token_invalid"


def test_previous_keys_are_refused_at_start_when_they_are_not_ed25519_public_keys() -> None:
    from identity.config import Settings

    with pytest.raises(ValueError, match="IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS"):
        Settings(environment="development", jwt_previous_public_keys="not a key")


# --- the field-encryption key ring and `voucher-identity reencrypt` -----------------------------


async def stored_legal_rep_id(app: FastAPI, org_id: str) -> str:
    async with app.state.db.session() as s:
        row = (await s.exec(select(Organization).where(Organization.id == org_id))).one()
    assert row.legal_rep_id_enc
    return row.legal_rep_id_enc


async def test_an_id_number_stored_under_the_old_key_reads_after_rotation_and_after_reencrypt(
    make_identity: MakeIdentity, fresh_db: MakeDb, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    url = await fresh_db("identity", schema="identity")
    before = await make_identity(database_url=url, field_encryption_key=old)
    id_number = make_resident_id()
    async with client_of(before) as c:
        _session, org = await Flows(c, ApiDriver(c)).certified(legal_rep_id_number=id_number)
    under_old = await stored_legal_rep_id(before, org["id"])

    # The new key is current, the old one stays in the ring: the stored number still reads.
    after = await make_identity(
        database_url=url, field_encryption_key=new, field_encryption_previous_keys=old
    )
    ring = after.state.identity.cipher
    assert ring.decrypt(under_old, context=LEGAL_REP_ID_CONTEXT) == id_number

    env = {
        **cli_env(url, tmp_path / "files"),
        "IDENTITY_FIELD_ENCRYPTION_KEY": new,
        "IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS": f" {old} ,",
    }
    code, out, err = await run_cli("reencrypt", "--batch-size", "1", env=env)
    assert code == 0, err
    report = {row["column"]: row for row in map(json.loads, out.splitlines())}
    assert report["organizations.legal_rep_id_enc"]["rewritten"] == 1
    assert report["organizations.legal_rep_id_enc"]["unreadable"] == []
    assert "users.id_number_enc" in report

    # Under the new key alone now; a second run finds nothing left to do.
    rewritten = await stored_legal_rep_id(after, org["id"])
    assert rewritten != under_old
    assert FieldCipher.ring(new).decrypt(rewritten, context=LEGAL_REP_ID_CONTEXT) == id_number
    code, out, err = await run_cli("reencrypt", env=env)
    assert code == 0, err
    again = {row["column"]: row for row in map(json.loads, out.splitlines())}
    assert again["organizations.legal_rep_id_enc"]["rewritten"] == 0
    assert again["organizations.legal_rep_id_enc"]["already_current"] == 1


async def test_reencrypt_fails_naming_the_rows_no_key_of_the_ring_reads(
    make_identity: MakeIdentity, fresh_db: MakeDb, tmp_path: Path
) -> None:
    lost = generate_key()
    url = await fresh_db("identity", schema="identity")
    app = await make_identity(database_url=url, field_encryption_key=lost)
    async with client_of(app) as c:
        _session, org = await Flows(c, ApiDriver(c)).certified()
    env = {**cli_env(url, tmp_path / "files"), "IDENTITY_FIELD_ENCRYPTION_KEY": generate_key()}
    code, out, _err = await run_cli("reencrypt", env=env)
    assert code == 1
    report = {row["column"]: row for row in map(json.loads, out.splitlines())}
    assert report["organizations.legal_rep_id_enc"]["unreadable"] == [org["id"]]
    async with app.state.db.session() as s:  # left as it was
        row = (await s.exec(select(Organization).where(Organization.id == org["id"]))).one()
    assert FieldCipher.ring(lost).decrypt(row.legal_rep_id_enc, context=LEGAL_REP_ID_CONTEXT)


def test_previous_field_keys_are_checked_at_start() -> None:
    from identity.config import Settings

    for refused in ("not-base64!", "a2V5"):  # not base64; 3 bytes, not 32
        with pytest.raises(ValueError, match="IDENTITY_FIELD_ENCRYPTION_PREVIOUS_KEYS"):
            Settings(environment="development", field_encryption_previous_keys=refused)
    one, two = generate_key(), generate_key()
    settings = Settings(environment="development", field_encryption_previous_keys=f" {one} ,{two}")
    assert settings.field_encryption_previous_keys == [one, two]
