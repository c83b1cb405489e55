"""Property-based tests over the OpenAPI of identity and of the gateway: whatever the
generated input, within the schema or not, the answer is never a 5xx.

The documents are built from the apps at import (building an app starts nothing), because
schemathesis' fixture-based loader does not work with pytest 9; the gateway's is merged the
way the running gateway merges it. Both are exercised against real processes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.compose import merge_openapi
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway
from identity.config import Settings as IdentitySettings
from identity.main import create_app as create_identity

from .conftest import FuzzTarget

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.filter_too_much,
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
)

IDENTITY_DOC = create_identity(IdentitySettings(environment="development")).openapi()
GATEWAY_DOC = merge_openapi(
    create_gateway(GatewaySettings(environment="development")).openapi(), {"identity": IDENTITY_DOC}
)

identity_api = schemathesis.openapi.from_dict(IDENTITY_DOC)
gateway_api = schemathesis.openapi.from_dict(GATEWAY_DOC)


def _headers(target: FuzzTarget, path: str) -> dict[str, str]:
    token = target.admin_token if path.startswith("/api/v1/admin") else target.owner_token
    return {"Authorization": f"Bearer {token}"}


@identity_api.parametrize()
@FUZZ
def test_identity_never_answers_5xx(case: schemathesis.Case, fuzz_target: FuzzTarget) -> None:
    case.call_and_validate(
        base_url=fuzz_target.identity_url,
        headers=_headers(fuzz_target, case.path),
        checks=[not_a_server_error],
    )


@gateway_api.parametrize()
@FUZZ
def test_gateway_never_answers_5xx(case: schemathesis.Case, fuzz_target: FuzzTarget) -> None:
    case.call_and_validate(
        base_url=fuzz_target.gateway_url,
        headers=_headers(fuzz_target, case.path),
        checks=[not_a_server_error],
    )
