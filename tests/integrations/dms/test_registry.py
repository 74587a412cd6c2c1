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
    "cdk": {
        "base_url": "http://x",
        "token_url": "http://x/oauth2/token",
        "client_id": "c",
        "client_secret": "s",
        "subscription_id": "sub",
    },
    "tekion": {"base_url": "http://x", "token": "t", "dealer_id": "D1"},
    "dealertrack": {
        "base_url": "http://x/opentrack",
        "dealer_id": "DT1",
        "username": "u",
        "password": "p",
    },
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
    assert adapter.snapshot is (kind == "dealertrack")
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
