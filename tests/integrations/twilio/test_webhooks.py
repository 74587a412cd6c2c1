"""Webhook signatures match Twilio's documented example and its own library."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from integrations.twilio.webhooks import build_url, compute_signature, is_valid_signature

DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_example() -> None:
    assert compute_signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert is_valid_signature("12345", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_agrees_with_twilio_request_validator() -> None:
    params = {"Body": "Is my car ready? ✅", "From": "whatsapp:+14155550142", "NumMedia": "0"}
    url = "http://127.0.0.1:8000/webhooks/twilio/messages"
    assert compute_signature("tok", url, params) == RequestValidator("tok").compute_signature(
        url, params
    )


def test_pairs_and_mappings_sign_the_same() -> None:
    pairs = list(reversed(DOC_PARAMS.items()))
    assert compute_signature("12345", DOC_URL, pairs) == DOC_SIGNATURE


def test_repeated_names_sort_by_value() -> None:
    pairs = [("MediaUrl", "b"), ("Body", "x"), ("MediaUrl", "a")]
    expected = compute_signature(
        "t", "https://h/p", [("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]
    )
    assert compute_signature("t", "https://h/p", pairs) == expected
    form = FormData(list(pairs))
    assert compute_signature("t", "https://h/p", form) == expected
    assert compute_signature("t", "https://h/p", [("MediaUrl", "a")]) != expected


@pytest.mark.parametrize("signature", [None, "", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "garbage"])
def test_missing_or_wrong_signature_is_invalid(signature: str | None) -> None:
    assert not is_valid_signature("12345", DOC_URL, DOC_PARAMS, signature)


def test_tampered_params_or_url_are_invalid() -> None:
    assert not is_valid_signature("12345", DOC_URL, {**DOC_PARAMS, "Digits": "9"}, DOC_SIGNATURE)
    assert not is_valid_signature("12345", DOC_URL + "&x=1", DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid_signature("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_default_port_variants_are_accepted_like_the_library() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert is_valid_signature("12345", with_port, DOC_PARAMS, DOC_SIGNATURE)


def test_any_port_is_accepted_as_twilios_validator_accepts_it() -> None:
    """Issue 27: Twilio's validator also tries the URL without a non-default port."""
    on_8443 = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert RequestValidator("12345").validate(on_8443, DOC_PARAMS, DOC_SIGNATURE)
    assert is_valid_signature("12345", on_8443, DOC_PARAMS, DOC_SIGNATURE)


class _QueryDict(dict[str, str]):
    """A Django-style form (getlist), as Twilio's validator reads repeated names."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


def test_repeated_identical_values_sign_as_twilios_validator_signs_them() -> None:
    """Issue 27: a value repeated under one name counts once in Twilio's computation."""
    pairs = [("Body", "x"), ("MediaUrl", "https://m/1"), ("MediaUrl", "https://m/1")]
    official = RequestValidator("t").compute_signature("https://h/p", _QueryDict(pairs))
    assert compute_signature("t", "https://h/p", pairs) == official
    assert is_valid_signature("t", "https://h/p", FormData(pairs), official)


@pytest.mark.parametrize(
    ("public", "path", "query", "expected"),
    [
        (
            "https://pw.example.com",
            "/webhooks/twilio/status",
            "",
            "https://pw.example.com/webhooks/twilio/status",
        ),
        (
            "https://pw.example.com/",
            "/webhooks/twilio/status",
            "ro=1&a=b%20c",
            "https://pw.example.com/webhooks/twilio/status?ro=1&a=b%20c",
        ),
        (
            "http://127.0.0.1:8000",
            "webhooks/twilio/voice",
            b"x=1",
            "http://127.0.0.1:8000/webhooks/twilio/voice?x=1",
        ),
        (
            "https://pw.example.com/base",
            "/webhooks/twilio/messages",
            None,
            "https://pw.example.com/base/webhooks/twilio/messages",
        ),
    ],
)
def test_build_url_joins_exactly(
    public: str, path: str, query: str | bytes | None, expected: str
) -> None:
    assert build_url(public, path, query) == expected
