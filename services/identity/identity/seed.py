"""Demo data for development (``make run``): an administrator, an enterprise and a provider
that a newcomer can sign in as at once. Idempotent: existing phones are left alone."""

from __future__ import annotations

from dataclasses import dataclass

from common import demo
from common.app import ServiceRuntime
from common.bus import emit
from common.events import BankAccountChanged, OrganizationCertified
from common.masking import mask_id_number
from common.timers import utcnow
from identity.context import IdentityContext
from identity.domain.organizations import LEGAL_REP_ID_CONTEXT
from identity.models import BankAccount, Organization, User
from identity.service import auth as service


@dataclass(frozen=True)
class DemoAccount:
    label: str
    phone: str
    password: str
    role: str
    organization: str | None


DEMO_PASSWORD = demo.DEMO_PASSWORD
ADMIN = demo.ADMIN


async def seed_demo(ctx: IdentityContext, runtime: ServiceRuntime) -> list[DemoAccount]:
    accounts = [DemoAccount(ADMIN[0], ADMIN[1], ADMIN[2], "administrator", None)]
    async with runtime.db.transaction() as session:
        if await service.active_user_by_phone(session, ADMIN[1]) is None:
            session.add(
                User(
                    phone=ADMIN[1],
                    name="演示管理员",
                    role="administrator",
                    password_hash=await service.hash_password(ctx, ADMIN[2]),
                )
            )
        for d in demo.ORGS:
            label, phone, name, kind, provider, rep, bank = (
                d.label,
                d.phone,
                d.name,
                d.kind,
                d.provider,
                d.legal_rep,
                d.bank,
            )
            accounts.append(DemoAccount(label, phone, DEMO_PASSWORD, "owner", name))
            if await service.active_user_by_phone(session, phone) is not None:
                continue
            now = utcnow()
            id_number = d.legal_rep_id
            org = Organization(
                id=d.id,
                name=name,
                uscc=d.uscc,
                kind=kind,
                certified_at=now,
                is_provider=provider,
                provider_since=now if provider else None,
                legal_rep_name=rep,
                legal_rep_id_type="resident_id",
                legal_rep_id_enc=ctx.cipher.encrypt(id_number, context=LEGAL_REP_ID_CONTEXT),
                legal_rep_id_masked=mask_id_number(id_number),
            )
            session.add(org)
            await session.flush()
            session.add(
                User(
                    phone=phone,
                    name=rep,
                    role="owner",
                    organization_id=org.id,
                    password_hash=await service.hash_password(ctx, DEMO_PASSWORD),
                )
            )
            account = BankAccount(
                organization_id=org.id,
                account_name=name,
                bank_name=bank,
                bank_region="广西壮族自治区南宁市",
                branch_name=f"{bank}南宁分行营业部",
                account_number="6222020" + phone[-8:] + "0001",
            )
            session.add(account)
            assert org.uscc is not None
            await emit(
                session,
                OrganizationCertified(org_id=org.id, name=name, uscc=org.uscc, kind=kind),
                aggregate_id=org.id,
            )
            await emit(
                session,
                BankAccountChanged(
                    org_id=org.id,
                    account_name=account.account_name,
                    bank_name=account.bank_name,
                    bank_region=account.bank_region,
                    branch_name=account.branch_name,
                    account_number=account.account_number,
                ),
                aggregate_id=org.id,
            )
    return accounts
