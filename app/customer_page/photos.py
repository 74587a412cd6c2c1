"""Photos of repair lines: checked by their bytes, kept on disk, served only through a link.

Only JPEG, PNG and WebP are taken, recognised by their magic bytes (never by the file
name or the browser's Content-Type), up to PHOTO_MAX_BYTES each. Files are stored under
a random key in PITWALL_MEDIA_DIR; no name from outside reaches the file system.
S3-compatible storage would be another `PhotoStore`; only the disk store exists today.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Protocol

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
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...


class DiskPhotoStore:
    """Photos as files under one directory, named by their random keys."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").replace(".", "").isalnum() or ".." in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / "photos" / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a reader never sees half a photo

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None


def new_key(extension: str) -> str:
    """A random storage key: nothing about the RO or the customer is in it."""
    return f"{secrets.token_hex(16)}.{extension}"
