"""Request and response models of identity's API (field names are API.md's)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator

from common.errors import FIELD_LABELS
from common.text import Name
from identity.domain import auth as domain

FIELD_LABELS.update(
    {
        "phone": "手机号",
        "sms_code": "短信验证码",
        "captcha_id": "图形验证码",
        "captcha_answer": "图形验证码",
        "enterprise_name": "企业名称",
        "password": "密码",
        "new_password": "新密码",
        "old_password": "原密码",
        "refresh_token": "登录凭证",
        "purpose": "用途",
    }
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _phone(value: str) -> str:
    if not domain.valid_phone(value):
        raise ValueError("请输入正确的11位手机号")
    return value


Phone = Annotated[str, Field(min_length=11, max_length=11, examples=["13812346433"]), AfterValidator(_phone)]


class CaptchaOut(BaseModel):
    captcha_id: str
    image_png_base64: str
    expires_in: int


class SmsCodeIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": "13877106433",
                    "purpose": "register",
                    "captcha_id": "c9f1d2",
                    "captcha_answer": "7K3P",
                }
            ]
        }
    )

    phone: Phone
    purpose: Literal["register", "login", "certify", "reset_password"]
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=8)


class SmsCodeOut(BaseModel):
    sent: bool = True
    expires_in: int
    resend_after: int


class RegisterIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enterprise_name": "广西柳州精工机械制造有限公司",
                    "phone": "13877106433",
                    "sms_code": "482915",
                }
            ]
        }
    )

    enterprise_name: Name = Field(min_length=2, max_length=100)
    phone: Phone
    sms_code: str = Field(min_length=4, max_length=8)


class PasswordLoginIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": "13877106433",
                    "password": "Gx-liuzhou#2024",
                    "captcha_id": "c9f1d2",
                    "captcha_answer": "7K3P",
                }
            ]
        }
    )

    phone: Phone
    password: str = Field(min_length=1, max_length=128)
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=8)


class SmsLoginIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": "13877106433",
                    "sms_code": "482915",
                    "captcha_id": "c9f1d2",
                    "captcha_answer": "7K3P",
                }
            ]
        }
    )

    phone: Phone
    sms_code: str = Field(min_length=4, max_length=8)
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=8)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordResetIn(Strict):
    phone: Phone
    sms_code: str = Field(min_length=4, max_length=8)
    new_password: str = Field(min_length=1, max_length=128)


class PasswordChangeIn(Strict):
    new_password: str = Field(min_length=1, max_length=128)
    old_password: str | None = Field(default=None, max_length=128)


class UserOut(BaseModel):
    """Built from a ``User`` row: ``UserOut.model_validate(user)``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    phone: str
    name: str
    role: str


class OrganizationOut(BaseModel):
    """Built from an ``Organization`` row: ``OrganizationOut.model_validate(org)``. The ID
    number is only ever the masked one; the suspension reason shows while suspended."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    uscc: str | None
    certified: bool
    capabilities: list[str]
    suspended: bool
    kind: str | None = None
    legal_rep_name: str | None = None
    legal_rep_id_type: str | None = None
    legal_rep_id_number: str | None = Field(
        default=None,
        description="masked",
        validation_alias=AliasChoices("legal_rep_id_masked", "legal_rep_id_number"),
    )
    suspended_reason: str | None = None

    @model_validator(mode="after")
    def _reason_only_while_suspended(self) -> OrganizationOut:
        if not self.suspended:
            self.suspended_reason = None
        return self


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    user: UserOut
    organization: OrganizationOut | None = None


class MeOut(BaseModel):
    user: UserOut
    organization: OrganizationOut | None
