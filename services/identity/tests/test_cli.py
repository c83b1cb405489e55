"""``voucher-identity``: the first administrator and production keys, from a shell."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.testing.api_client import ApiDriver, random_phone
from identity import tokens

PASSWORD = "Root-Pass-2024"


async def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    # The installed ``voucher-identity`` script when there is one, else the module it runs.
    script = Path(sys.executable).with_name("voucher-identity")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "identity.cli"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def cli_env(database_url: str, files: Path) -> dict[str, str]:
    return {
        "ENVIRONMENT": "development",
        "IDENTITY_DATABASE_URL": database_url,
        "IDENTITY_STORAGE_URL": str(files),
        "LOG_JSON": "false",
    }


async def test_generate_jwt_key_prints_an_ed25519_pem() -> None:
    code, out, _err = await run_cli("generate-jwt-key")
    assert code == 0
    assert out.startswith("-----BEGIN PRIVATE KEY-----")
    tokens.load_private_key(out)  # an Ed25519 key identity can sign with
    _, other, _ = await run_cli("generate-jwt-key")
    assert other != out


async def test_generate_field_key_prints_a_256_bit_key() -> None:
    code, out, _err = await run_cli("generate-field-key")
    assert code == 0 and len(base64.b64decode(out.strip())) == 32


@pytest.mark.broker
async def test_create_admin_once_then_sign_in(
    fresh_db: Callable[[str], Awaitable[str]], make_identity: Any, tmp_path: Path
) -> None:
    url = await fresh_db("identity")
    phone = random_phone()
    env = cli_env(url, tmp_path / "files")
    code, out, err = await run_cli(
        "create-admin",
        "--phone",
        phone,
        "--name",
        "运维管理员",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        env=env,
    )
    assert code == 0, err
    assert out.strip() == f"created administrator {phone[:3]}****{phone[-4:]}"
    assert PASSWORD not in out + err

    code, out, _ = await run_cli(
        "create-admin", "--phone", phone, "--password-stdin", stdin="Other-Pass-2024\n", env=env
    )
    assert code == 0 and out.startswith("not created")

    # The service started on that database lets the administrator in, with the first password.
    app = await make_identity(database_url=url)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        session = await ApiDriver(client).login(phone, PASSWORD)
        assert session.body["user"] == {
            "id": session.body["user"]["id"],
            "phone": phone,
            "name": "运维管理员",
            "role": "administrator",
        }


async def test_create_admin_refuses_a_weak_password_or_a_bad_phone(
    fresh_db: Callable[[str], Awaitable[str]], tmp_path: Path
) -> None:
    url = await fresh_db("identity")
    env = cli_env(url, tmp_path / "files")
    code, out, err = await run_cli(
        "create-admin", "--phone", random_phone(), "--password-stdin", stdin="12345678\n", env=env
    )
    assert code == 2 and out == ""
    assert "密码" in err
    code, _, err = await run_cli(
        "create-admin", "--phone", "12345", "--password-stdin", stdin=PASSWORD, env=env
    )
    assert code == 2 and "手机号" in err


async def test_import_regions_makes_regions_csv_from_china_divisions_dist(tmp_path: Path) -> None:
    (tmp_path / "provinces.csv").write_text('code,name\n11,"北京市"\n45,"广西壮族自治区"\n41,"河南省"\n')
    (tmp_path / "cities.csv").write_text(
        'code,name,provinceCode\n1101,"市辖区",11\n4501,"南宁市",45\n4190,"省直辖县级行政区划",41\n'
    )
    (tmp_path / "areas.csv").write_text(
        'code,name,cityCode,provinceCode\n110101,"东城区",1101,11\n419001,"济源市",4190,41\n'
    )
    code, out, _ = await run_cli("import-regions", str(tmp_path))
    assert code == 0
    assert out.splitlines() == [
        "code,name,parent",
        "110000,北京市,",
        "410000,河南省,",
        "419001,济源市,410000",
        "450000,广西壮族自治区,",
        "450100,南宁市,450000",
    ]


async def test_import_bank_branches_keeps_good_rows_and_says_why_it_left_others_out(tmp_path: Path) -> None:
    source = tmp_path / "cnaps.csv"
    source.write_text(
        "cnaps_code,bank,name,region\n"
        "102611000011,中国工商银行,中国工商银行甲支行,广西壮族自治区南宁市\n"
        "12345,中国工商银行,中国工商银行乙支行,450100\n",
        encoding="utf-8",
    )
    code, out, err = await run_cli("import-bank-branches", str(source))
    assert code == 0
    assert out.splitlines() == [
        "cnaps_code,bank_code,bank,name,region",
        "102611000011,102,中国工商银行,中国工商银行甲支行,450100",
    ]
    assert "第3行：联行号应为12位数字" in err
