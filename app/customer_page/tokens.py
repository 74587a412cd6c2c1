"""Link tokens: 128 random bits in the URL, only their SHA-256 in the database.

A POST from the page carries a CSRF token derived from the link (HMAC of the token's
hash under the deployment's secret key): there is no session to hold one, and a page
on another site cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# secrets.token_urlsafe(16): 16 random bytes, 22 URL-safe characters.
TOKEN_BYTES = 16
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")
PATH_PREFIX = "/c/"


def new_token() -> str:
    """A fresh unguessable link token (128 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(value: str) -> bool:
    """Cheap shape check before any database lookup."""
    return TOKEN_PATTERN.fullmatch(value) is not None


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def csrf_token(secret_key: str, link_hash: str) -> str:
    """The page's CSRF token, bound to its link."""
    mac = hmac.new(secret_key.encode("utf-8"), b"customer-page:" + link_hash.encode(), "sha256")
    return mac.hexdigest()[:32]


def csrf_ok(secret_key: str, link_hash: str, given: str | None) -> bool:
    """Constant-time check of a POSTed CSRF token; a missing one never matches."""
    if not given:
        return False
    return hmac.compare_digest(csrf_token(secret_key, link_hash), given)
