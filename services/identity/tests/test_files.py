"""Files through identity's API: uploads judged by their bytes, downloads only for those allowed,
and the internal endpoints other services use."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlmodel import select

from common.auth import issue_service_token
from common.reads import FileMeta
from common.settings import DEV_SERVICE_TOKEN_SECRET
from common.testing.api_client import ApiDriver, Session, random_phone
from identity.models import StoredFile

pytestmark = pytest.mark.broker

ADMIN_PHONE, ADMIN_PASSWORD = "13900000001", "Admin-Pass-2024"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(admin_phone=ADMIN_PHONE, admin_password=ADMIN_PASSWORD, **relaxed_sms)


def service_headers(service: str = "contracts") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_service_token(DEV_SERVICE_TOKEN_SECRET, service)}"}


async def upload(
    client: httpx.AsyncClient,
    session: Session,
    data: bytes,
    name: str = "营业执照.pdf",
    declared: str = "application/pdf",
) -> httpx.Response:
    return await client.post("/api/v1/files", files={"file": (name, data, declared)}, headers=session.headers)


async def test_an_upload_is_stored_and_given_back_to_its_organisation(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, identity_app: FastAPI, tmp_path: Path
) -> None:
    owner, org = await flows.certified()
    r = await upload(client, owner, PDF)
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["name"] == "营业执照.pdf"
    assert meta["content_type"] == "application/pdf"
    assert meta["size"] == len(PDF)
    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()

    got = await client.get(f"/api/v1/files/{meta['file_id']}", headers=owner.headers)
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote('营业执照.pdf')}" in disposition
    assert disposition.isascii()

    # Another member of the organisation (its agent) reads it too.
    phone = random_phone()
    await client.put(
        "/api/v1/me/organization/agent",
        json={"name": "李经办", "id_number": "H12345678", "id_type": "hk_macao_tw_permit", "phone": phone},
        headers=owner.headers,
    )
    agent = await api.sms_login(phone)
    assert (await client.get(f"/api/v1/files/{meta['file_id']}", headers=agent.headers)).content == PDF

    # Stored under a key made of nothing the user typed, owned by the organisation.
    async with identity_app.state.db.session() as s:
        row = await s.get(StoredFile, meta["file_id"])
    assert row is not None and row.organization_id == org["id"]
    assert re.fullmatch(rf"files/\d{{4}}/\d{{2}}/{meta['file_id']}", row.storage_key)
    assert (tmp_path / "files" / row.storage_key).read_bytes() == PDF


async def test_the_type_is_judged_by_the_bytes_not_the_name(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    r = await upload(client, owner, PNG, name="scan.pdf", declared="application/pdf")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"
    r = await upload(client, owner, JPEG, name="photo", declared="application/octet-stream")
    assert r.status_code == 201 and r.json()["content_type"] == "image/jpeg"
    for data, name, declared in [
        (b"<html><script>alert(1)</script></html>", "invoice.pdf", "application/pdf"),
        (b"MZ\x90\x00 executable", "photo.png", "image/png"),
        (b"PK\x03\x04 a zip or docx", "合同.pdf", "application/pdf"),
    ]:
        r = await upload(client, owner, data, name=name, declared=declared)
        assert r.status_code == 415, name
        assert r.json()["code"] == "unsupported_file_type"
        assert r.json()["detail"] == "仅支持上传 PDF、JPG、PNG 格式的文件"


async def test_a_path_in_the_name_is_dropped(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    r = await upload(client, owner, PDF, name="../../etc/发票.pdf")
    assert r.status_code == 201
    assert r.json()["name"] == "发票.pdf"
    r = await upload(client, owner, PDF, name="C:\\Users\\me\\报告.pdf")
    assert r.json()["name"] == "报告.pdf"


async def test_empty_and_oversized_files_are_refused(
    make_identity: Any, relaxed_sms: dict[str, Any], flows: Any, client: httpx.AsyncClient
) -> None:
    owner, _org = await flows.certified()
    r = await upload(client, owner, b"")
    assert r.status_code == 422 and r.json()["code"] == "empty_file"
    r = await client.post("/api/v1/files", headers=owner.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"

    small = await make_identity(max_upload_bytes=1024, **relaxed_sms)
    transport = httpx.ASGITransport(app=small, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        session = await ApiDriver(c).register()
        r = await upload(c, session, PDF + b"0" * 2000)
        assert r.status_code == 413
        assert r.json()["code"] == "file_too_large"
        assert r.json()["detail"] == "文件大小不能超过 1 KB"
        # Far beyond the limit, the body itself is refused before it is read.
        r = await upload(c, session, PDF + b"0" * (200 * 1024))
        assert r.status_code == 413
        ok = await upload(c, session, PDF)
        assert ok.status_code == 201


async def test_another_organisation_cannot_tell_a_file_exists(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    stranger, _ = await flows.certified()
    file_id = (await upload(client, owner, PDF)).json()["file_id"]
    r = await client.get(f"/api/v1/files/{file_id}", headers=stranger.headers)
    unknown = await client.get("/api/v1/files/00000000-0000-0000-0000-000000000000", headers=stranger.headers)
    assert r.status_code == unknown.status_code == 404
    assert r.json()["code"] == unknown.json()["code"] == "file_not_found"
    assert r.json()["detail"] == unknown.json()["detail"]
    assert (await client.get(f"/api/v1/files/{file_id}")).status_code == 401
    assert (
        await client.post("/api/v1/files", files={"file": ("a.pdf", PDF, "application/pdf")})
    ).status_code == 401


async def test_a_grant_lets_the_counterparty_read_the_file(flows: Any, client: httpx.AsyncClient) -> None:
    owner, _org = await flows.certified()
    counterparty, counterparty_org = await flows.certified()
    file_id = (await upload(client, owner, PDF, name="转账回单.pdf")).json()["file_id"]

    # Other services check a file and its owner, with a service token only.
    assert (await client.get(f"/internal/files/{file_id}")).status_code == 401
    meta = await client.get(f"/internal/files/{file_id}", headers=service_headers())
    assert meta.status_code == 200
    owner_me = (await client.get("/api/v1/me", headers=owner.headers)).json()
    assert meta.json() | {"created_at": None} == {
        "file_id": file_id,
        "organization_id": owner_me["organization"]["id"],
        "uploader_id": owner_me["user"]["id"],
        "name": "转账回单.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "created_at": None,
    }
    # the contract common.files and demands parse it with: every field, none lost or added
    assert FileMeta.model_validate(meta.json()).model_dump(mode="json") == meta.json()
    unknown = await client.get(
        "/internal/files/00000000-0000-0000-0000-000000000000", headers=service_headers()
    )
    assert unknown.status_code == 404

    grant = {"organization_id": counterparty_org["id"], "reason": "order ORD1 remittance"}
    assert (await client.post(f"/internal/files/{file_id}/grants", json=grant)).status_code == 401
    for _ in range(2):  # idempotent
        r = await client.post(
            f"/internal/files/{file_id}/grants", json=grant, headers=service_headers("payments")
        )
        assert r.status_code == 204
    got = await client.get(f"/api/v1/files/{file_id}", headers=counterparty.headers)
    assert got.status_code == 200 and got.content == PDF
    r = await client.post(
        f"/internal/files/{file_id}/grants", json={"organization_id": "nope"}, headers=service_headers()
    )
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"


async def test_a_member_of_a_suspended_organisation_uploads_nothing_until_it_is_restored(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, identity_app: FastAPI, tmp_path: Path
) -> None:
    """An upload starts something new (a claim's invoice, a proof): refused like the other
    actions of a suspended organisation, and nothing is stored."""
    owner, org = await flows.certified()
    phone = random_phone()
    await client.put(
        "/api/v1/me/organization/agent",
        json={"name": "李经办", "id_number": "H12345678", "id_type": "hk_macao_tw_permit", "phone": phone},
        headers=owner.headers,
    )
    agent = await api.sms_login(phone)
    admin = await api.login(ADMIN_PHONE, ADMIN_PASSWORD)
    url = f"/api/v1/admin/organizations/{org['id']}"
    r = await client.post(f"{url}/suspend", json={"reason": "合同纠纷，暂停业务"}, headers=admin.headers)
    assert r.status_code == 200, r.text

    for who in (owner, agent):
        r = await upload(client, who, PDF)
        assert r.status_code == 403, r.text
        assert (r.json()["code"], r.json()["reason"]) == ("organization_suspended", "合同纠纷，暂停业务")
    async with identity_app.state.db.session() as s:
        assert (await s.exec(select(StoredFile))).all() == []
    assert not (tmp_path / "files").exists() or not any(p.is_file() for p in (tmp_path / "files").rglob("*"))

    assert (
        await client.post(f"{url}/restore", json={"reason": "纠纷已解决"}, headers=admin.headers)
    ).status_code == 200
    assert (await upload(client, owner, PDF)).status_code == 201


async def test_staff_read_any_file_and_upload_their_own(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver
) -> None:
    owner, _org = await flows.certified()
    file_id = (await upload(client, owner, PNG, name="发票.png", declared="image/png")).json()["file_id"]
    admin = await api.login(ADMIN_PHONE, ADMIN_PASSWORD)
    got = await client.get(f"/api/v1/files/{file_id}", headers=admin.headers)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    mine = await upload(client, admin, PDF, name="通知.pdf")
    assert mine.status_code == 201
    assert (
        await client.get(f"/api/v1/files/{mine.json()['file_id']}", headers=admin.headers)
    ).status_code == 200
    # ... which no organisation can read.
    r = await client.get(f"/api/v1/files/{mine.json()['file_id']}", headers=owner.headers)
    assert r.status_code == 404


def open_files_in(directory: Path) -> list[str]:
    """The files this process holds open in ``directory`` (a spooled upload is unlinked at
    once: only its open descriptor shows it)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(f"{directory}/"):
            found.append(target)
    return found


async def test_an_upload_over_1_mib_waits_on_disk_in_the_temporary_folder_not_in_memory(
    make_identity: Any, relaxed_sms: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17, section 9: a multipart file over 1 MiB is spooled to a temporary file in the
    process's temporary folder (``TMPDIR``; /tmp is a disk-backed volume in the manifests: a
    memory-backed /tmp of 16 MiB let two 10 MiB uploads evict identity). Smaller ones stay
    in memory; nothing is left behind."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # what TMPDIR sets at start
    app = await make_identity(**relaxed_sms)
    ctx = app.state.identity
    stored = ctx.storage.put
    spooled: list[list[str]] = []

    async def put(key: str, data: bytes, content_type: str) -> None:
        spooled.append(open_files_in(spool))  # while the request still holds its upload
        await stored(key, data, content_type)

    ctx.storage.put = put
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as c:
        from .conftest import Flows

        owner, _org = await Flows(c, ApiDriver(c)).certified()
        big = PDF + b"0" * (1024 * 1024 + 4096)
        r = await upload(c, owner, big)
        assert r.status_code == 201, r.text
        assert r.json()["size"] == len(big)
        assert (await c.get(f"/api/v1/files/{r.json()['file_id']}", headers=owner.headers)).content == big
        assert (await upload(c, owner, PDF)).status_code == 201
    assert [len(files) for files in spooled] == [1, 0], spooled
    assert open_files_in(spool) == [] and list(spool.iterdir()) == []
