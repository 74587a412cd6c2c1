"""CSRF: each session has its own token (in its web_session row; before login, in the
signed anonymous cookie of the login form), and it must come back with every POST.

Forms carry it as the hidden field `csrf_token`; htmx and fetch send it as the
`X-CSRF-Token` header (the page sets it on <body hx-headers>). Another site can make
the browser send the cookie (SameSite=Lax already blocks that for cross-site POSTs)
but cannot read the token, so it cannot forge the field.
"""

from __future__ import annotations

import hmac

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
