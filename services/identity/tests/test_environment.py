"""Development-only providers and /dev endpoints exist only with ENVIRONMENT=development."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from common.crypto import DEV_FIELD_KEY, generate_key
from common.testing.api_client import random_phone
from identity.config import Settings
from identity.tokens import private_pem

pytestmark = pytest.mark.broker


def production(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment": "production",
        "service_token_secret": "a-production-secret-0123456789abcdef",
        "jwt_private_key": private_pem(Ed25519PrivateKey.generate()),
        "field_encryption_key": generate_key(),
        "hash_key": generate_key(),
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_private_key": None}, "IDENTITY_JWT_PRIVATE_KEY"),
        ({"field_encryption_key": None}, "IDENTITY_FIELD_ENCRYPTION_KEY"),
        ({"field_encryption_key": DEV_FIELD_KEY}, "development encryption keys"),
        ({"sms_provider": "console"}, "IDENTITY_SMS_PROVIDER=console"),
        ({"face_verifier": "simulated"}, "IDENTITY_FACE_VERIFIER=simulated"),
        ({"seed_demo": True}, "IDENTITY_SEED_DEMO"),
    ],
)
def test_production_refuses_development_things(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**production(**overrides))


def test_production_defaults_to_disabled_providers() -> None:
    s = Settings(**production())
    assert (s.sms_provider, s.enterprise_verifier, s.face_verifier) == ("disabled", "disabled", "disabled")
    d = Settings(environment="development")
    assert (d.sms_provider, d.enterprise_verifier, d.face_verifier) == ("console", "simulated", "simulated")


async def test_a_production_identity_has_no_dev_endpoints_and_no_console_sms(
    make_identity, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    app = await make_identity(
        **production(seed_demo=False, sms_provider=None, enterprise_verifier=None, face_verifier=None)
    )
    assert not any(getattr(r, "path", "").startswith("/api/v1/dev") for r in app.routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as c:
        assert (
            await c.get("/api/v1/dev/sms-codes/latest", params={"phone": "13800000000"})
        ).status_code == 404
        captcha = (await c.get("/api/v1/captcha")).json()
        # Without the dev helper the answer is unknown here: read it from the database the way
        # a person reads the picture.
        from sqlmodel import select

        from identity.models import Captcha

        async with app.state.db.session() as session:
            answer = (
                await session.exec(select(Captcha.answer).where(Captcha.id == captcha["captcha_id"]))
            ).one()
        r = await c.post(
            "/api/v1/sms-codes",
            json={
                "phone": random_phone(),
                "purpose": "register",
                "captcha_id": captcha["captcha_id"],
                "captcha_answer": answer,
            },
        )
        assert r.status_code == 503 and r.json()["code"] == "sms_unavailable"


SMS_TEMPLATES = {
    "sms_template_register": "SMS_1",
    "sms_template_login": "SMS_2",
    "sms_template_certify": "SMS_3",
    "sms_template_reset_password": "SMS_4",
}
ALIYUN = {
    "sms_provider": "aliyun",
    "sms_sign_name": "广西制造服务券",
    "aliyun_access_key_id": "LTAI-visible-key-id",
    "aliyun_access_key_secret": "aliyun-secret-do-not-print",
    **SMS_TEMPLATES,
}
TENCENT = {
    "sms_provider": "tencent",
    "sms_sign_name": "广西制造服务券",
    "tencent_secret_id": "AKID-visible-secret-id",
    "tencent_secret_key": "tencent-secret-do-not-print",
    "tencent_sms_sdk_app_id": "1400000001",
    **SMS_TEMPLATES,
}
FACEID = {
    "face_verifier": "tencent",
    "tencent_secret_id": "AKID-visible-secret-id",
    "tencent_secret_key": "tencent-secret-do-not-print",
    "tencent_faceid_rule_id": "2",
}

ALIYUN_FACE = {
    "face_verifier": "aliyun",
    "aliyun_access_key_id": "LTAI-visible-key-id",
    "aliyun_access_key_secret": "aliyun-secret-do-not-print",
    "aliyun_face_scene_id": "1000000006",
}


def without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


@pytest.mark.parametrize(
    ("vendor", "missing", "names"),
    [
        (ALIYUN, ("aliyun_access_key_secret",), ["IDENTITY_ALIYUN_ACCESS_KEY_SECRET"]),
        (
            ALIYUN,
            ("aliyun_access_key_id", "sms_sign_name"),
            ["IDENTITY_SMS_SIGN_NAME", "IDENTITY_ALIYUN_ACCESS_KEY_ID"],
        ),
        (ALIYUN, ("sms_template_login",), ["IDENTITY_SMS_TEMPLATE_LOGIN"]),
        (TENCENT, ("tencent_sms_sdk_app_id",), ["IDENTITY_TENCENT_SMS_SDK_APP_ID"]),
        (
            TENCENT,
            ("tencent_secret_key", "sms_template_reset_password"),
            ["IDENTITY_SMS_TEMPLATE_RESET_PASSWORD", "IDENTITY_TENCENT_SECRET_KEY"],
        ),
        (FACEID, ("tencent_faceid_rule_id",), ["IDENTITY_TENCENT_FACEID_RULE_ID"]),
        (FACEID, ("tencent_secret_id",), ["IDENTITY_TENCENT_SECRET_ID"]),
        (ALIYUN_FACE, ("aliyun_face_scene_id",), ["IDENTITY_ALIYUN_FACE_SCENE_ID"]),
        (ALIYUN_FACE, ("aliyun_access_key_secret",), ["IDENTITY_ALIYUN_ACCESS_KEY_SECRET"]),
    ],
)
def test_production_refuses_a_half_configured_vendor_naming_only_what_is_missing(
    vendor: dict[str, Any], missing: tuple[str, ...], names: list[str]
) -> None:
    values = production(**without(vendor, *missing))
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    message = str(caught.value)
    assert "settings missing for the chosen vendors: " + ", ".join(names) in message
    for name, value in values.items():
        if name != "environment" and isinstance(value, str) and len(value) > 3:
            assert value not in message, f"the value of {name} is in the error"


def test_a_fully_configured_vendor_is_accepted_and_chosen() -> None:
    from identity.adapters.face import AliyunFaceVerifier, TencentFaceVerifier, face_verifier
    from identity.adapters.sms import AliyunSms, TencentSms, sms_provider

    s = Settings(
        **production(
            **ALIYUN,
            **without(FACEID, "tencent_secret_id", "tencent_secret_key"),
            tencent_secret_id="AKID-x",
            tencent_secret_key="k",
        )
    )
    assert isinstance(sms_provider(s.sms_provider, s), AliyunSms)
    assert isinstance(face_verifier(s.face_verifier, s), TencentFaceVerifier)
    assert "aliyun-secret-do-not-print" not in repr(s)  # secrets are SecretStr
    t = Settings(**production(**TENCENT))
    assert isinstance(sms_provider(t.sms_provider, t), TencentSms)
    a = Settings(**production(**ALIYUN_FACE))
    assert isinstance(face_verifier(a.face_verifier, a), AliyunFaceVerifier)
