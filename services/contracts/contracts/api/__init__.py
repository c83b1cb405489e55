"""Public routers, one module per resource: thin (deps -> service -> one commit -> Out)."""

from __future__ import annotations

from common.idv import verification_expired, verification_invalid
from common.orgs import organization_suspended, organization_syncing
from contracts import errors

# What the routes of both resources answer when the caller's organisation may not act, and
# when the 人脸认证 token they spend is refused.
ACTIVE = (organization_suspended, organization_syncing)
VERIFICATION = (verification_invalid, verification_expired, errors.verification_used)
