"""File storage behind one small interface: a local folder in development, S3-compatible in production.

Keys are relative, slash-separated paths chosen by the service (e.g. ``files/2024/12/<uuid>``),
never a user's file name. Both backends refuse keys that could reach outside their space.
The content type is given on ``put`` (S3 keeps it as object metadata; the local folder does
not keep it, so the caller records it with the file's row, as identity does).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff_content_type(data: bytes) -> str | None:
    """The type the bytes really are (PDF, PNG, JPEG), from magic bytes only; else ``None``.

    Uploads are checked with this rather than trusting the file name or the client's header,
    which anyone can set to ``application/pdf``.
    """
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key, else ``ValueError``.

    Refused: empty keys, absolute paths, ``.``/``..`` or empty segments, backslashes and NUL,
    so that no key can name something outside the storage root (or a different S3 key than it
    appears to).
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"storage key must be a relative path: {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"storage key has an empty, '.' or '..' segment: {key!r}")
    return key


@runtime_checkable
class FileStorage(Protocol):
    """Where uploaded files live. Every method is async; ``get`` of a missing key raises FileNotFoundError."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files under a folder. Writes are atomic (temporary file + ``os.replace``): a reader sees the
    old file or the new one, never half a file, even if the process dies while writing."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # resolve() follows symlinks: a link inside the root pointing elsewhere is refused too.
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._write, path, bytes(data))

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        return await asyncio.to_thread(self._read, path, key)

    @staticmethod
    def _read(path: Path, key: str) -> bytes:
        if not path.is_file():
            raise FileNotFoundError(key)
        return path.read_bytes()

    async def delete(self, key: str) -> None:
        """Remove the file; deleting a missing key is not an error (as on S3)."""
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(path.is_file)


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, a cloud's OSS). boto3 is synchronous, so every
    call runs in a worker thread; the client is thread-safe and made once.

    Credentials not given here come from boto3's usual chain (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles), so secrets stay out of URLs.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        # Path-style addressing for custom endpoints: MinIO and most on-premise services do not
        # resolve bucket-name subdomains.
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
        )
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (development and tests; production buckets
        are provisioned with their policies)."""
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
            await asyncio.to_thread(self._client.create_bucket, Bucket=self.bucket)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=check_key(key),
            Body=bytes(data),
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        check_key(key)

        def read() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            with response["Body"] as body:
                return body.read()

        try:
            return await asyncio.to_thread(read)
        except ClientError as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from None
            raise

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=check_key(key))

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True


def _is_not_found(exc: Any) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in ("404", "NoSuchKey", "NoSuchBucket", "NotFound") or status == 404


def storage_from_url(url: str) -> FileStorage:
    """The storage a settings URL names.

    - ``file:///var/lib/voucher/files``, ``/var/lib/voucher/files`` or ``./data/files``: a local
      folder (relative paths are relative to the working directory);
    - ``s3://bucket?endpoint=http://127.0.0.1:9000&region=cn-south-1``: an S3-compatible bucket,
      credentials from the standard AWS environment variables.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 storage URL names no bucket: {url!r}")
        if parts.path not in ("", "/"):
            raise ValueError(f"s3 storage URL must not have a path (key prefixes are not supported): {url!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown s3 storage URL parameters: {sorted(unknown)}")
        return S3Storage(parts.netloc, endpoint_url=query.get("endpoint"), region=query.get("region"))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path: {url!r}")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "" and url:
        return LocalStorage(Path(url))
    raise ValueError(f"unsupported storage URL (use file:///path, ./path or s3://bucket): {url!r}")
