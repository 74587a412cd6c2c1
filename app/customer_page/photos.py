"""Photos of repair lines: checked by their bytes, stored on disk or in S3, served only by link.

Only JPEG, PNG and WebP are taken, recognised by their magic bytes (never by the file
name or the browser's Content-Type), up to PHOTO_MAX_BYTES each. Photos are stored under
a random key; no name from outside reaches the store. PITWALL_MEDIA_DIR names the store:
a directory, or ``s3://bucket/prefix`` for any S3-compatible service (AWS, MinIO, R2, ...),
reached with boto3's own settings (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an instance role). The bucket stays private:
Pitwall reads the bytes and serves them through the customer's link.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTOS_PER_LINE = 6
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)


class PhotoRefused(ValueError):
    """An upload that is not a photo we take, or too big; the message says which."""


def photo_type(data: bytes) -> tuple[str, str]:
    """(content type, extension) from the file's first bytes, or PhotoRefused."""
    if not data:
        raise PhotoRefused("the file is empty")
    if len(data) > PHOTO_MAX_BYTES:
        raise PhotoRefused(
            f"the photo is {len(data) / 1024 / 1024:.1f} MB; the limit is "
            f"{PHOTO_MAX_BYTES // 1024 // 1024} MB"
        )
    for magic, content_type, extension in _SIGNATURES:
        if data.startswith(magic):
            return content_type, extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    raise PhotoRefused("only JPEG, PNG or WebP photos can be added (this file is none of them)")


class PhotoStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = ...) -> None: ...

    def get(self, key: str) -> bytes | None: ...


class PhotoStoreError(RuntimeError):
    """The store could not be reached or refused us; the message names the store."""


def _checked(key: str) -> str:
    if not key.replace("-", "").replace(".", "").isalnum() or ".." in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class DiskPhotoStore:
    """Photos as files under one directory, named by their random keys."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / "photos" / _checked(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a reader never sees half a photo

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None


class S3PhotoStore:
    """Photos as objects in an S3-compatible bucket, under ``<prefix>/photos/<key>``."""

    def __init__(self, url: str, client: Any = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"PITWALL_MEDIA_DIR: not an s3://bucket/prefix URL: {url!r}")
        self.url = url
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self.prefix = f"{prefix}/photos/" if prefix else "photos/"
        if client is None:
            import boto3  # only a dealer who stores photos in S3 pays for the import

            client = boto3.client("s3")
        self.client = client

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + _checked(key),
                Body=data,
                ContentType=content_type,
            )
        except (BotoCoreError, ClientError) as error:
            raise PhotoStoreError(f"could not store the photo in {self.url}: {error}") from error

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise PhotoStoreError(f"could not read the photo from {self.url}: {error}") from error
        except BotoCoreError as error:
            raise PhotoStoreError(f"could not read the photo from {self.url}: {error}") from error
        body: bytes = answer["Body"].read()
        return body


@cache
def photo_store(media_dir: str) -> PhotoStore:
    """The store PITWALL_MEDIA_DIR names (one client per store, kept for the process)."""
    if media_dir.startswith("s3://"):
        return S3PhotoStore(media_dir)
    return DiskPhotoStore(media_dir)


def new_key(extension: str) -> str:
    """A random storage key: nothing about the RO or the customer is in it."""
    return f"{secrets.token_hex(16)}.{extension}"
