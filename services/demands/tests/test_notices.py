"""Notices and policy documents: administrators publish, edit and withdraw; everyone reads."""

from __future__ import annotations

import uuid

from common.testing.saga import FakeFile

from .conftest import World
from .test_demands import problem


async def test_publish_read_edit_withdraw(world: World) -> None:
    w = world
    body = {
        "title": "服务券管理办法",
        "kind": "policy",
        "body_html": '<h2>第一章</h2><p onclick="x()">总则<script>1</script></p>',
    }
    r = await w.call("POST", "/admin/notices", w.admin, json=body)
    assert r.status_code == 201, r.text
    notice = r.json()
    assert (
        notice["kind_label"] == "政策文件"
        and "<script" not in notice["body_html"]
        and "onclick" not in notice["body_html"]
    )
    later = await w.call(
        "POST",
        "/admin/notices",
        w.admin,
        json={"title": "2024年“揭榜”通知", "kind": "notice", "body_html": "<p>通知</p>"},
    )
    listing = (await w.call("GET", "/notices")).json()  # public
    assert [n["title"] for n in listing["items"]] == ["2024年“揭榜”通知", "服务券管理办法"]
    assert [
        n["title"] for n in (await w.call("GET", "/notices", params={"kind": "policy"})).json()["items"]
    ] == ["服务券管理办法"]

    r = await w.call(
        "PUT", f"/admin/notices/{notice['id']}", w.admin, json={**body, "title": "服务券管理办法（修订）"}
    )
    assert r.json()["title"] == "服务券管理办法（修订）"
    assert (await w.call("GET", f"/notices/{notice['id']}")).json()["title"] == "服务券管理办法（修订）"

    assert (await w.call("DELETE", f"/admin/notices/{later.json()['id']}", w.admin)).status_code == 204
    problem(await w.call("GET", f"/notices/{later.json()['id']}"), 404, "notice_not_found")


async def test_a_pdf_notice_is_public_to_download(world: World) -> None:
    w = world
    file_id = str(uuid.uuid4())
    w.files[file_id] = FakeFile(
        file_id, "", name="企业操作指南.pdf", uploader_id=w.admin.user_id, content=b"%PDF-1.7 guide"
    )
    r = await w.call(
        "POST",
        "/admin/notices",
        w.admin,
        json={"title": "企业操作指南", "kind": "guide", "attachment_file_id": file_id},
    )
    assert r.status_code == 201, r.text
    notice = r.json()
    assert notice["attachment_name"] == "企业操作指南.pdf"
    pdf = await w.call("GET", f"/notices/{notice['id']}/attachment")
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.7 guide"
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    # Not somebody else's file, not an image.
    other = str(uuid.uuid4())
    w.files[other] = FakeFile(other, "", uploader_id="someone-else")
    problem(
        await w.call(
            "POST",
            "/admin/notices",
            w.admin,
            json={"title": "x", "kind": "guide", "attachment_file_id": other},
        ),
        422,
        "file_not_owned",
    )
    png = str(uuid.uuid4())
    w.files[png] = FakeFile(png, "", content_type="image/png", uploader_id=w.admin.user_id)
    problem(
        await w.call(
            "POST", "/admin/notices", w.admin, json={"title": "x", "kind": "guide", "attachment_file_id": png}
        ),
        422,
        "file_type_not_allowed",
    )


async def test_only_administrators_publish(world: World) -> None:
    w = world
    body = {"title": "通知", "kind": "notice", "body_html": "<p>内容</p>"}
    for who in (w.reviewer, w.finance, w.enterprise):
        problem(await w.call("POST", "/admin/notices", who, json=body), 403, "forbidden_role")
    problem(
        await w.call("POST", "/admin/notices", w.admin, json={**body, "body_html": "<script>x</script>"}),
        422,
        "notice_empty",
    )
    problem(
        await w.call("POST", "/admin/notices", w.admin, json={**body, "kind": "ad"}), 422, "validation_error"
    )
    assert (await w.call("GET", "/notices")).json()["total"] == 0
