"""Identity and the gateway as processes for the property-based API tests (module-scoped:
one platform serves every generated case)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from common.db import connect
from common.settings import database_in
from common.testing.api_client import ApiDriver
from common.testing.data import valid_resident_id, valid_uscc
from common.testing.dropping import dropper
from common.testing.plugin import RabbitNamespace, require_broker
from common.testing.processes import Processes, free_port, running

ADMIN_PHONE = "13900000001"
ADMIN_PASSWORD = "Admin-fuzz-2024"


@dataclass
class FuzzTarget:
    identity_url: str
    gateway_url: str
    owner_token: str
    admin_token: str
    processes: Processes


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_target(
    postgres_server: str,
    amqp_url_or_none: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[FuzzTarget]:
    amqp_url = require_broker(amqp_url_or_none, request)
    tag = uuid.uuid4().hex[:10]
    rabbit = RabbitNamespace(
        url=amqp_url, exchange=f"test.{tag}.events", prefix=f"test.{tag}.", services=["identity"]
    )
    databases = {"identity": f"t_fuzz_identity_{tag}", "gateway": f"t_fuzz_gateway_{tag}"}
    conn = await connect(database_in(postgres_server, "postgres"))
    try:
        for name in databases.values():
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    tmp = tmp_path_factory.mktemp("fuzz")
    identity_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        **rabbit.env(),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "IDENTITY_DATABASE_URL": database_in(postgres_server, databases["identity"]),
        "GATEWAY_DATABASE_URL": database_in(postgres_server, databases["gateway"]),
        "IDENTITY_JWKS_URL": f"http://127.0.0.1:{identity_port}/.well-known/jwks.json",
        "IDENTITY_STORAGE_URL": str(tmp / "files"),
        "IDENTITY_ADMIN_PHONE": ADMIN_PHONE,
        "IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "IDENTITY_SMS_RESEND_SECONDS": "0",
        "IDENTITY_SMS_DAILY_CAP_PER_IP": "100000",
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8192",
        "GATEWAY_IDENTITY_URL": f"http://127.0.0.1:{identity_port}",
        "GATEWAY_RATE_LIMIT_PER_IP": "1000000",
        "GATEWAY_RATE_LIMIT_PER_USER": "1000000",
    }
    try:
        with running(env, tmp / "logs") as processes:
            identity = processes.start("identity", "identity.main:create_app", identity_port)
            gateway = processes.start("gateway", "gateway.main:create_app", gateway_port)
            async with httpx.AsyncClient(base_url=gateway, timeout=20) as client:
                api = ApiDriver(client)
                owner = await api.register()
                code = await api.sms_code(owner.phone, "certify")
                r = await client.post(
                    "/api/v1/me/organization/certification",
                    json={
                        "role": "enterprise",
                        "name": "广西模糊测试有限公司",
                        "uscc": valid_uscc(),
                        "legal_rep_name": "测试",
                        "legal_rep_id_type": "resident_id",
                        "legal_rep_id_number": valid_resident_id(),
                        "sms_code": code,
                        "agreed": True,
                    },
                    headers=owner.headers,
                )
                assert r.status_code == 200, r.text
                owner = await api.refresh(owner)
                admin = await api.login(ADMIN_PHONE, ADMIN_PASSWORD)
            yield FuzzTarget(identity, gateway, owner.access_token, admin.access_token, processes)
            logs = processes.log_text()
            assert "Traceback" not in logs, logs[-4000:]
    finally:
        await RabbitNamespace.cleanup(rabbit)
        for name in databases.values():
            dropper.drop(postgres_server, name)
