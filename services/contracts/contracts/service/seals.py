"""The seals: the platform's signing CA, each organisation's seal (its image, key and
certificate), the single use of identity's verification tokens, and the check of anyone's
signed PDF against the CA. Nothing here commits (the route, or the start-up's transaction
for the CA, commits once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import Principal
from common.idv import check_verification_token, verification_invalid
from common.orgs import org_copy, require_active
from common.rules import Refusal
from contracts import document, errors, signing, verification
from contracts.context import ContractsContext
from contracts.domain import seals as domain
from contracts.models import Contract, Seal, SigningAuthority, UsedVerification

# What each encrypted column's values are bound to (common.crypto's context; cli's rekey).
KEY_CONTEXT = "contracts.seal.private_key"
CA_KEY_CONTEXT = "contracts.signing_ca.key"


async def load_signing_ca(session: AsyncSession, ctx: ContractsContext) -> signing.SigningCA:
    """The CA from settings; in development, the one kept in the database (made once)."""
    s = ctx.settings
    if s.signing_ca_key_pem and s.signing_ca_cert_pem:
        return signing.SigningCA.from_pem(s.signing_ca_key_pem, s.signing_ca_cert_pem)
    if not s.is_development:  # settings refuse this already; never generate a CA in production
        raise RuntimeError("no signing CA configured")
    row = await session.get(SigningAuthority, 1)
    if row is None:
        ca = signing.SigningCA.generate()
        await session.execute(
            pg_insert(SigningAuthority)
            .values(
                id=1, key_enc=ctx.cipher.encrypt(ca.key_pem, context=CA_KEY_CONTEXT), cert_pem=ca.cert_pem
            )
            .on_conflict_do_nothing()
        )
        row = await session.get(SigningAuthority, 1, populate_existing=True)
        assert row is not None
    return signing.SigningCA.from_pem(ctx.cipher.decrypt(row.key_enc, context=CA_KEY_CONTEXT), row.cert_pem)


# --- verifying anyone's PDF (public) -------------------------------------------------------------


async def verify_document(ctx: ContractsContext, pdf: bytes) -> verification.Report:
    """The uploaded PDF judged against the platform's CA (no database: nothing is stored),
    at most ``verify_concurrency`` at once per process, each in a worker thread."""
    if not pdf:
        raise errors.verify_empty_file()
    ca_pem = ctx.require_ca().cert_pem
    try:
        await asyncio.wait_for(ctx.verify_slots.acquire(), ctx.settings.verify_wait_seconds)
    except TimeoutError:
        raise errors.verify_busy() from None
    # The slot is given back when the thread is done, not when this request is: a caller who
    # hangs up cannot start more checks than the slots while its own still runs.
    work = asyncio.ensure_future(asyncio.to_thread(verification.verify_pdf, pdf, ca_pem))
    work.add_done_callback(_give_back(ctx.verify_slots))
    try:
        return await asyncio.shield(work)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None


def _give_back(slots: asyncio.Semaphore) -> Callable[[asyncio.Future[Any]], None]:
    def done(work: asyncio.Future[Any]) -> None:
        slots.release()
        if not work.cancelled():
            work.exception()  # retrieved: a caller gone away leaves no "never retrieved" warning

    return done


# --- identity's verification tokens: each spent once ---------------------------------------------


async def spend_verification(
    session: AsyncSession,
    verifier: Any,
    principal: Principal,
    token: str,
    *,
    purpose: str,
    object_id: str | None,
) -> str:
    """The caller's passed 人脸认证 for ``purpose`` (and ``object_id``), checked, then its jti
    recorded as used (an atomic insert): a second use is refused. The jti is returned. The
    spending is part of the caller's transaction: a refusal after it rolls it back too."""
    claims = await check_verification_token(
        verifier,
        token,
        user_id=principal.user_id,
        purpose=purpose,
        object_id=object_id,
        org_id=principal.org_id,
    )
    jti = str(claims.get("jti") or "")
    if not jti:
        raise verification_invalid()
    inserted = await session.execute(
        pg_insert(UsedVerification)
        .values(jti=jti, user_id=str(claims["sub"]), purpose=purpose, object_id=claims.get("obj"))
        .on_conflict_do_nothing()
        .returning(col(UsedVerification.jti))
    )
    if inserted.first() is None:
        raise errors.verification_used()
    return jti


# --- an organisation's seal ----------------------------------------------------------------------


async def organization_name(session: AsyncSession, org_id: str) -> str | None:
    org = await org_copy(session, org_id)
    if org is not None and org.name:
        return org.name
    for column, name in (
        (Contract.enterprise_id, Contract.enterprise_name),
        (Contract.provider_id, Contract.provider_name),
    ):
        found = (await session.exec(select(name).where(col(column) == org_id).limit(1))).first()
        if found:
            return str(found)
    return None


async def make_seal(
    session: AsyncSession, ctx: ContractsContext, verifier: Any, principal: Principal, token: str
) -> Seal:
    if not domain.may_make_seal(principal.role, principal.org_id) or principal.org_id is None:
        raise errors.owner_only()
    await require_active(session, principal)
    # The token first: a spent one is refused whatever else holds (single use).
    await spend_verification(session, verifier, principal, token, purpose=domain.SEAL_PURPOSE, object_id=None)
    if await session.get(Seal, principal.org_id) is not None:
        raise errors.seal_exists()
    name = await organization_name(session, principal.org_id)
    if not name:
        raise errors.organization_unknown()
    try:
        unshown = await asyncio.to_thread(document.unprintable_in_seal, name, font=ctx.settings.pdf_font_path)
    except document.FontMissing as exc:
        raise errors.document_unavailable() from exc
    if unshown:
        raise errors.text_not_printable("电子签章", [("org_name", "单位名称", unshown)])
    ca = ctx.require_ca()
    issued = await asyncio.to_thread(
        ca.issue, principal.org_id, name, years=ctx.settings.seal_certificate_years
    )
    try:
        image = await asyncio.to_thread(document.seal_png, name, font=ctx.settings.pdf_font_path)
    except document.FontMissing as exc:
        raise errors.document_unavailable() from exc
    inserted = await session.execute(
        pg_insert(Seal)
        .values(
            org_id=principal.org_id,
            org_name=name,
            image_png=image,
            certificate_pem=issued.cert_pem,
            private_key_enc=ctx.cipher.encrypt(issued.key_pem, context=KEY_CONTEXT),
            certificate_serial=issued.serial,
            created_by=principal.user_id,
        )
        .on_conflict_do_nothing()
        .returning(col(Seal.org_id))
    )
    if inserted.first() is None:  # another request made it at the same moment
        raise errors.seal_exists()
    seal = await session.get(Seal, principal.org_id)
    assert seal is not None
    return seal


def private_key(ctx: ContractsContext, seal: Seal) -> str:
    """The seal's signing key (PEM), decrypted for one signature."""
    return ctx.cipher.decrypt(seal.private_key_enc, context=KEY_CONTEXT)
