"""Twilio webhook signatures (``X-Twilio-Signature``) and the URLs they cover.

Twilio signs ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + ...))`` with the
form parameters sorted by name, then by value for repeated names. Pitwall computes and
checks it with the twilio library's ``RequestValidator``, so it accepts exactly what
Twilio's own validator does. The URL is the one Twilio called, so behind a proxy it must
be rebuilt from ``PITWALL_PUBLIC_URL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from twilio.request_validator import RequestValidator

__all__ = ["SIGNATURE_HEADER", "build_url", "compute_signature", "is_valid_signature"]

SIGNATURE_HEADER = "X-Twilio-Signature"

FormParams = Mapping[str, object] | Iterable[tuple[str, str]]


class _Form:
    """Form pairs as Twilio's validator reads them: names, and every value of a name.

    The values are grouped by name once: the validator asks for each name's values once
    per URL it tries (with and without the port).
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._count = len(pairs)
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def getlist(self, name: str) -> list[str]:
        return self._values.get(name, [])

    # The validator asks for `getall` first (Flask's MultiDict): without it, every name of
    # every signature it computes raised and caught an AttributeError before `getlist`.
    getall = getlist


def _form(params: FormParams | None) -> _Form:
    if params is None:
        return _Form([])
    if isinstance(params, Mapping):
        getlist = getattr(params, "getlist", None)
        if callable(getlist):
            # Starlette's FormData / MultiDict keep repeated names; a plain dict cannot.
            return _Form([(str(name), str(value)) for name in params for value in getlist(name)])
        return _Form([(str(name), str(value)) for name, value in params.items()])
    return _Form([(str(name), str(value)) for name, value in params])


def compute_signature(auth_token: str, url: str, params: FormParams | None) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for ``url`` and form ``params``.

    Twilio's own computation (``RequestValidator``): names sorted, each name's distinct
    values sorted. ``params`` is a mapping (a multi-dict keeps repeated names) or a list
    of ``(name, value)`` pairs.
    """
    return str(RequestValidator(auth_token).compute_signature(url, _form(params)))


def is_valid_signature(
    auth_token: str, url: str, params: FormParams | None, signature: str | None
) -> bool:
    """Accept exactly what Twilio's official validator accepts; a missing signature is invalid.

    ``RequestValidator.validate`` compares in constant time and tries the URL with and
    without its port (Twilio's signing side is not consistent about ports).
    """
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, _form(params), signature))


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
