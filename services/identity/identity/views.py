"""Response shapes built from rows (shared by the routers)."""

from __future__ import annotations

from identity.models import Organization, User
from identity.schemas import OrganizationOut, UserOut


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, phone=user.phone, name=user.name, role=user.role)


def organization_out(org: Organization | None) -> OrganizationOut | None:
    if org is None:
        return None
    return OrganizationOut(
        id=org.id,
        name=org.name,
        uscc=org.uscc,
        certified=org.certified,
        capabilities=org.capabilities,
        suspended=org.suspended,
        kind=org.kind,
        legal_rep_name=org.legal_rep_name,
        legal_rep_id_type=org.legal_rep_id_type,
        legal_rep_id_number=org.legal_rep_id_masked,
        suspended_reason=org.suspended_reason if org.suspended else None,
    )
