"""Rotating CONTRACTS_SEAL_KEY_ENCRYPTION_KEY: the organisations' signing keys are kept
encrypted under it. The new key becomes current and the old one goes to
CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS: a seal made before still signs; after
``voucher-contracts reencrypt-seal-keys`` every seal signs with the new key alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from common.crypto import FieldCipher, generate_key
from common.testing.saga import SagaHarness
from contracts.cli import main
from contracts.config import Settings
from contracts.context import ContractsContext

from .conftest import Deal, approve_provider, certify


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"  # the keys have nothing to do with the bus


def deploy(h: SagaHarness, key: str, previous: str = "") -> None:
    """What a restart with these settings gives the running contracts."""
    settings = Settings(
        environment="development", seal_key_encryption_key=key, seal_key_encryption_previous_keys=previous
    )
    h["contracts"].app.state.contracts.cipher = ContractsContext(settings).cipher


async def reencrypt(h: SagaHarness, monkeypatch: pytest.MonkeyPatch, key: str, previous: str) -> int:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("CONTRACTS_DATABASE_URL", h["contracts"].runtime.settings.database_url)
    monkeypatch.setenv("CONTRACTS_SEAL_KEY_ENCRYPTION_KEY", key)
    monkeypatch.setenv("CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS", previous)
    code = await asyncio.to_thread(main, ["reencrypt-seal-keys", "--batch-size", "1"])
    return code


async def test_a_seal_made_under_the_old_key_signs_after_rotation_and_after_reencrypt(
    saga: Callable[..., Awaitable[SagaHarness]],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    old, new = generate_key(), generate_key()
    h = await saga("contracts", overrides={"contracts": {"seal_key_encryption_key": old}})
    enterprise = h.issuer.member(caps=("enterprise",))
    provider = h.issuer.member(caps=("enterprise", "provider"))
    await certify(h, enterprise, "广西测试制造有限公司")
    await certify(h, provider, "南宁数字化服务中心")
    await approve_provider(h, provider, "南宁数字化服务中心")
    await h.settle()
    deal = Deal(h, enterprise, provider)
    for who in (enterprise, provider):
        assert (await deal.seal(who)).status_code == 201
    await deal.agreed()

    deploy(h, new, previous=old)  # the rotation: the old key only decrypts now
    r = await deal.sign(enterprise)
    assert r.status_code == 200, r.text

    capfd.readouterr()
    code = await reencrypt(h, monkeypatch, new, old)
    out = capfd.readouterr().out
    assert code == 0, out
    report = {row["column"]: row for row in map(json.loads, out.splitlines())}
    assert report["seals.private_key_enc"]["rewritten"] == 2
    assert report["seals.private_key_enc"]["unreadable"] == []

    deploy(h, new)  # the old key removed
    r = await deal.sign(provider)
    assert r.status_code == 200, r.text

    # Run again: nothing left under the old key.
    capfd.readouterr()
    code = await reencrypt(h, monkeypatch, new, "")
    again = {row["column"]: row for row in map(json.loads, capfd.readouterr().out.splitlines())}
    assert code == 0
    assert again["seals.private_key_enc"] == {
        "column": "seals.private_key_enc",
        "rewritten": 0,
        "already_current": 2,
        "unreadable": [],
    }
    async with h.db("contracts").session() as s:
        tokens = (await s.execute(text("SELECT private_key_enc FROM seals"))).scalars().all()
    assert all(not FieldCipher.ring(new).needs_rotation(t) for t in tokens)


def test_previous_seal_keys_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="CONTRACTS_SEAL_KEY_ENCRYPTION_PREVIOUS_KEYS"):
        Settings(environment="development", seal_key_encryption_previous_keys="c2hvcnQ=")
    one = generate_key()
    assert Settings(
        environment="development", seal_key_encryption_previous_keys=one
    ).seal_key_encryption_previous_keys == [one]
