"""Building adapters from a rooftop's [rooftop.dms] settings, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integrations.dms.base import DmsAdapter
from integrations.dms.registry import (
    ADAPTER_SETTINGS,
    REQUIRED_SETTINGS,
    build_adapter,
    validate_settings,
)

VALID: dict[str, dict[str, Any]] = {
    "rest": {"base_url": "http://127.0.0.1:9100", "token": "bridge-token"},
    "cdk": {"client_id": "api-key", "client_secret": "s", "subscription_id": "sub"},
    "tekion": {"app_id": "app", "secret_key": "s", "dealer_id": "techmotors_4_0"},
    "dealertrack": {
        "enterprise_code": "ZE",
        "company_number": "ZE7",
        "server_name": "ot-server",
        "username": "u",
        "password": "p",
    },
    "star": {"path": "/tmp"},
    "csv": {"path": "/tmp", "columns": {"ro_number": "RO#"}},
    "simulator": {"seed": 3, "speed": 120.0, "ro_count": 10, "start_offset_minutes": 180},
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_kind_builds_an_adapter_satisfying_the_port(kind: str) -> None:
    assert validate_settings(kind, VALID[kind]) == []
    adapter = build_adapter(
        kind, VALID[kind], rooftop_slug="bayview-toyota", timezone="America/Los_Angeles"
    )
    assert isinstance(adapter, DmsAdapter)
    assert adapter.kind == kind
    assert adapter.snapshot is False  # until a read says otherwise
    adapter.close()


def test_allowed_keys_include_the_required_ones() -> None:
    assert set(ADAPTER_SETTINGS) == set(VALID)
    for kind, required in REQUIRED_SETTINGS.items():
        assert required <= ADAPTER_SETTINGS[kind]


def test_problems_name_each_key() -> None:
    problems = validate_settings("rest", {"token": "", "colour": "red"})
    assert problems == [
        "dms.base_url is missing",
        "dms.colour: unknown key for kind 'rest'",
        "dms.token: expected a non-empty string",
    ]
    assert validate_settings("simulator", {"speed": "fast"}) == [
        "dms.speed: expected a non-negative number, got 'fast'"
    ]
    assert validate_settings("csv", {"path": "/x", "columns": {"colour": "C"}}) == [
        "dms.columns.colour: unknown field"
    ]


def test_unknown_kind_and_missing_settings_raise_value_error_naming_the_rooftop() -> None:
    expected = r"rooftop 'bayview-toyota': dms\.kind: unknown kind 'sap'"
    with pytest.raises(ValueError, match=expected):
        build_adapter("sap", {}, rooftop_slug="bayview-toyota", timezone="UTC")
    with pytest.raises(ValueError) as caught:
        build_adapter(
            "cdk", {"base_url": "http://x"}, rooftop_slug="bayview-toyota", timezone="Mars/Olympus"
        )
    message = str(caught.value)
    assert message.startswith("rooftop 'bayview-toyota': dms.client_id is missing; ")
    assert "timezone: unknown time zone 'Mars/Olympus'" in message


def test_csv_folder_from_settings(tmp_path: Path) -> None:
    adapter = build_adapter("csv", {"path": str(tmp_path)}, rooftop_slug="r", timezone="UTC")
    adapter.check()
    assert list(adapter.fetch_changed(None)) == []


def test_vendor_credentials_are_checked_under_the_vendors_names_and_never_echoed() -> None:
    assert validate_settings("cdk", {"client_id": "k", "client_secret": "", "token": "t"}) == [
        "dms.subscription_id is missing",
        "dms.client_secret: expected a non-empty string",
        "dms.token: unknown key for kind 'cdk'",
    ]
    assert validate_settings("dealertrack", {**VALID["dealertrack"], "password": 12345678}) == [
        "dms.password: expected a non-empty string"
    ]
    assert validate_settings("tekion", {**VALID["tekion"], "base_url": "api.tekioncloud.com"}) == [
        "dms.base_url: expected an http(s) URL, got 'api.tekioncloud.com'"
    ]
    assert validate_settings("cdk", {**VALID["cdk"], "line_status_map": {"D": "nope"}}) == [
        "dms.line_status_map.D: expected one of approved, declined, pending, completed, got 'nope'"
    ]


def test_vendor_adapters_default_to_the_vendors_production_endpoints() -> None:
    urls = {}
    for kind in ("cdk", "tekion", "dealertrack"):
        adapter: Any = build_adapter(kind, VALID[kind], rooftop_slug="r", timezone="UTC")
        urls[kind] = getattr(adapter, "base_url", None) or adapter.url
        adapter.close()
    assert urls == {
        "cdk": "https://api.fortellis.io/cdk/drive/servicerepairorder/v1",
        "tekion": "https://api.tekioncloud.com/openapi",
        "dealertrack": "https://ot.dms.dealertrack.com/ServiceAPI.asmx",
    }
