"""Uploaded files: stored, read back, deleted, kept inside their space; S3 against a local moto server."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from common.storage import (
    FileStorage,
    LocalStorage,
    S3Storage,
    check_key,
    sniff_content_type,
    storage_from_url,
)

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20

UNSAFE_KEYS = [
    "",
    "/etc/passwd",
    "../secret",
    "a/../../b",
    "a/./b",
    "a//b",
    "a/",
    "..",
    ".",
    "a\\b",
    "a\x00b",
]


# ----------------------------------------------------------------------------- content sniffing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"GIF89a....", None),
        (b"<html><body>%PDF-</body></html>", None),  # magic must be at the start
        (b"MZ\x90\x00", None),  # a Windows executable renamed to .pdf
        (b"", None),
        (b"%PDF", None),  # truncated magic
    ],
)
def test_sniff_content_type_by_magic_bytes_only(data: bytes, expected: str | None) -> None:
    assert sniff_content_type(data) == expected


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


def test_ordinary_keys_are_accepted() -> None:
    for key in ("files/2024/12/0b6c.pdf", "a", "营业执照.pdf", "a..b/c.d"):
        assert check_key(key) == key


# ----------------------------------------------------------------------------- local folder


async def test_local_put_get_exists_delete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = "files/2024/12/contract.pdf"
    assert not await storage.exists(key)
    await storage.put(key, PDF, "application/pdf")
    assert await storage.exists(key)
    assert await storage.get(key) == PDF
    assert (tmp_path / "files/2024/12/contract.pdf").read_bytes() == PDF
    await storage.delete(key)
    assert not await storage.exists(key)
    with pytest.raises(FileNotFoundError):
        await storage.get(key)
    await storage.delete(key)  # deleting again is fine


async def test_local_overwrite_replaces_whole_file_and_leaves_no_temporaries(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("f/x.png", PNG * 100, "image/png")
    await storage.put("f/x.png", JPEG, "image/jpeg")
    assert await storage.get("f/x.png") == JPEG
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["x.png"]


async def test_local_write_is_atomic_readers_never_see_half_a_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    old, new = b"A" * 2_000_000, b"B" * 2_000_000
    await storage.put("big.bin", old, "application/octet-stream")
    seen: set[bytes] = set()

    async def read_often() -> None:
        for _ in range(30):
            data = await storage.get("big.bin")
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    await asyncio.gather(read_often(), *(storage.put("big.bin", new, "x/y") for _ in range(5)))
    assert seen <= {b"AA2000000", b"BB2000000"}


async def test_local_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("k.pdf", PDF, "application/pdf")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        await storage.put("k.pdf", b"%PDF-new", "application/pdf")
    monkeypatch.undo()
    assert await storage.get("k.pdf") == PDF
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["k.pdf"]  # the temporary file was removed


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_local_refuses_keys_escaping_the_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    storage = LocalStorage(root)
    with pytest.raises(ValueError):
        await storage.put(key, b"x", "text/plain")
    with pytest.raises(ValueError):
        await storage.get(key)
    with pytest.raises(ValueError):
        await storage.exists(key)
    with pytest.raises(ValueError):
        await storage.delete(key)
    assert not (tmp_path / "secret").exists()
    assert not (tmp_path / "b").exists()


async def test_local_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"root:x:0:0")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    storage = LocalStorage(root)
    with pytest.raises(ValueError):
        await storage.get("link/passwd")
    with pytest.raises(ValueError):
        await storage.put("link/new", b"x", "text/plain")
    assert not (outside / "new").exists()


async def test_local_directory_is_not_a_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("dir/file", b"x", "text/plain")
    assert not await storage.exists("dir")
    with pytest.raises(FileNotFoundError):
        await storage.get("dir")


# ----------------------------------------------------------------------------- URLs


def test_storage_from_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = storage_from_url(f"file://{tmp_path}/files")
    assert isinstance(absolute, LocalStorage)
    assert absolute.root == (tmp_path / "files").resolve()
    monkeypatch.chdir(tmp_path)
    relative = storage_from_url("./data/files")
    assert isinstance(relative, LocalStorage)
    assert relative.root == (tmp_path / "data/files").resolve()
    plain = storage_from_url(str(tmp_path / "plain"))
    assert isinstance(plain, LocalStorage) and plain.root == (tmp_path / "plain").resolve()
    assert isinstance(absolute, FileStorage)


@pytest.mark.parametrize(
    "url",
    ["", "http://example.com/files", "file://otherhost/files", "s3://", "s3://bucket/prefix", "s3://b?foo=1"],
)
def test_storage_from_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        storage_from_url(url)


# ----------------------------------------------------------------------------- S3 (moto server mode)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"files-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=name)
    return name


def _s3(bucket: str, endpoint: str) -> S3Storage:
    return S3Storage(bucket, endpoint_url=endpoint, region="us-east-1", access_key="test", secret_key="test")


async def test_s3_put_get_exists_delete(bucket: str, s3_endpoint: str) -> None:
    storage = _s3(bucket, s3_endpoint)
    assert isinstance(storage, FileStorage)
    key = "files/2024/12/营业执照.pdf"
    assert not await storage.exists(key)
    await storage.put(key, PDF, "application/pdf")
    assert await storage.exists(key)
    assert await storage.get(key) == PDF
    await storage.delete(key)
    assert not await storage.exists(key)
    with pytest.raises(FileNotFoundError):
        await storage.get(key)
    await storage.delete(key)  # deleting again is fine


async def test_s3_keeps_the_content_type(bucket: str, s3_endpoint: str) -> None:
    storage = _s3(bucket, s3_endpoint)
    await storage.put("a.png", PNG, "image/png")
    head = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).head_object(Bucket=bucket, Key="a.png")
    assert head["ContentType"] == "image/png"


async def test_s3_refuses_unsafe_keys(bucket: str, s3_endpoint: str) -> None:
    storage = _s3(bucket, s3_endpoint)
    for key in ("../x", "/abs", "a//b"):
        with pytest.raises(ValueError):
            await storage.put(key, b"x", "text/plain")
        with pytest.raises(ValueError):
            await storage.get(key)


async def test_s3_concurrent_uploads(bucket: str, s3_endpoint: str) -> None:
    storage = _s3(bucket, s3_endpoint)
    payloads = {f"files/{i}.bin": os.urandom(1000 + i) for i in range(20)}
    await asyncio.gather(*(storage.put(k, v, "application/octet-stream") for k, v in payloads.items()))
    assert await asyncio.gather(*(storage.get(k) for k in payloads)) == list(payloads.values())


async def test_s3_from_url_with_credentials_from_the_environment(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    name = f"made-{uuid.uuid4().hex[:12]}"
    storage = storage_from_url(f"s3://{name}?endpoint={s3_endpoint}&region=us-east-1")
    assert isinstance(storage, S3Storage)
    await storage.ensure_bucket()
    await storage.ensure_bucket()  # idempotent
    await storage.put("k.jpg", JPEG, "image/jpeg")
    assert await storage.get("k.jpg") == JPEG
