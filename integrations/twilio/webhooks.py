"""Twilio webhook signatures (``X-Twilio-Signature``) and the URLs they cover.

Twilio signs ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + ...))`` with the
form parameters sorted by name, then by value for repeated names. The URL is the one
Twilio called, so behind a proxy it must be rebuilt from ``PITWALL_PUBLIC_URL``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

__all__ = ["SIGNATURE_HEADER", "build_url", "compute_signature", "is_valid_signature"]

SIGNATURE_HEADER = "X-Twilio-Signature"

FormParams = Mapping[str, object] | Iterable[tuple[str, str]]


def _pairs(params: FormParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        getlist = getattr(params, "getlist", None)
        if callable(getlist):
            # Starlette's FormData / MultiDict keep repeated names; a plain dict cannot.
            return [(str(name), str(value)) for name in params for value in getlist(name)]
        return [(str(name), str(value)) for name, value in params.items()]
    return [(str(name), str(value)) for name, value in params]


def _signed_payload(url: str, params: FormParams | None) -> str:
    return url + "".join(name + value for name, value in sorted(_pairs(params)))


def compute_signature(auth_token: str, url: str, params: FormParams | None) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for ``url`` and form ``params``.

    ``params`` is a mapping (a multi-dict keeps repeated names) or a list of
    ``(name, value)`` pairs; repeated names are sorted by value.
    """
    digest = hmac.new(
        auth_token.encode("utf-8"), _signed_payload(url, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given plus with/without the default port.

    Twilio's own validator accepts both because Twilio's signing side is not
    consistent about ``:443``; we follow the library.
    """
    parts = urlsplit(url)
    variants = [url]
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname or ""
    if parts.port is None:
        with_port = parts._replace(netloc=f"{parts.netloc}:{default_port}")
        variants.append(urlunsplit(with_port))
    elif parts.port == default_port:
        netloc = parts.netloc.rsplit(":", 1)[0] if host else parts.netloc
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def is_valid_signature(
    auth_token: str, url: str, params: FormParams | None, signature: str | None
) -> bool:
    """Check an ``X-Twilio-Signature`` in constant time; a missing or empty one is invalid."""
    if not signature or not auth_token:
        return False
    pairs = _pairs(params)
    matched = False
    for candidate in _url_variants(url):
        expected = compute_signature(auth_token, candidate, pairs)
        # Evaluate every variant so timing does not reveal which one matched.
        matched |= hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))
    return matched


def library_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's own computation for a plain mapping; used to cross-check ours in tests."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def build_url(public_url: str, path: str, query: str | bytes | None = None) -> str:
    """Join ``PITWALL_PUBLIC_URL``, a request path and its raw query string exactly.

    ``build_url("https://pw.example.com/", "/webhooks/twilio/status", "ro=1")``
    gives ``https://pw.example.com/webhooks/twilio/status?ro=1``. The query is kept
    byte for byte (no re-encoding), since Twilio signed the URL as it called it.
    """
    base = public_url.rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    url = base + path
    if query:
        url += "?" + query.lstrip("?")
    return url
