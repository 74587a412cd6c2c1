"""Build a rooftop's DMS adapter from its ``[rooftop.dms]`` settings.

``settings`` is the TOML table minus ``kind`` and ``poll_seconds``. The config
loader calls :func:`validate_settings` first so a typo is a clear error at load
time ("dms.colour: unknown key") rather than a failing poll at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.dms.base import DmsAdapter, utcnow
from integrations.dms.http import RetryPolicy

# kind -> (required keys, optional keys)
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "rest": ({"base_url", "token"}, {"timeout_seconds"}),
    "cdk": (
        {"base_url", "token_url", "client_id", "client_secret", "subscription_id"},
        {"timeout_seconds"},
    ),
    "tekion": ({"base_url", "token", "dealer_id"}, {"timeout_seconds", "calls_per_15_minutes"}),
    "dealertrack": ({"base_url", "dealer_id", "username", "password"}, {"timeout_seconds"}),
    "csv": ({"path"}, {"columns", "delimiter", "encoding", "datetime_format"}),
    "simulator": (set(), {"seed", "speed", "ro_count", "start_offset_minutes"}),
}

ADAPTER_SETTINGS: dict[str, set[str]] = {kind: req | opt for kind, (req, opt) in _KEYS.items()}
"""Every key allowed under ``[rooftop.dms]`` per kind (besides ``kind`` and ``poll_seconds``)."""

REQUIRED_SETTINGS: dict[str, set[str]] = {kind: set(req) for kind, (req, _) in _KEYS.items()}
"""The keys each kind cannot work without."""

_NUMBERS = {"timeout_seconds", "speed", "start_offset_minutes"}
_INTEGERS = {"seed", "ro_count", "calls_per_15_minutes"}


def validate_settings(kind: str, settings: Mapping[str, Any]) -> list[str]:
    """Problems with a rooftop's DMS settings, each naming the key; empty when fine."""
    if kind not in _KEYS:
        return [f"dms.kind: unknown kind {kind!r} (expected one of {', '.join(sorted(_KEYS))})"]
    problems = [f"dms.{key} is missing" for key in sorted(REQUIRED_SETTINGS[kind] - set(settings))]
    for key, value in sorted(settings.items()):
        if key not in ADAPTER_SETTINGS[kind]:
            problems.append(f"dms.{key}: unknown key for kind {kind!r}")
        elif key in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"dms.{key}: expected a whole number, got {value!r}")
        elif key in _NUMBERS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(f"dms.{key}: expected a non-negative number, got {value!r}")
        elif key == "columns":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, str) for v in value.values()
            ):
                problems.append('dms.columns: expected a table of field = "CSV header"')
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"dms.{key}: expected a non-empty string")
    if kind == "csv" and isinstance(settings.get("columns"), Mapping):
        from integrations.dms.csv_drop import COLUMN_FIELDS

        for field in sorted(set(settings["columns"]) - COLUMN_FIELDS):
            problems.append(f"dms.columns.{field}: unknown field")
    return problems


def build_adapter(
    kind: str,
    settings: Mapping[str, Any],
    *,
    rooftop_slug: str,
    timezone: str,
    clock: Callable[[], datetime] = utcnow,
    retry: RetryPolicy | None = None,
) -> DmsAdapter:
    """Build the adapter for one rooftop; ValueError names the rooftop and every problem."""
    problems = validate_settings(kind, settings)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {timezone!r}")
    if problems:
        raise ValueError(f"rooftop '{rooftop_slug}': " + "; ".join(problems))
    s = dict(settings)
    common: dict[str, Any] = {"rooftop_slug": rooftop_slug, "retry": retry}
    if "timeout_seconds" in s:
        import httpx

        common["timeout"] = httpx.Timeout(float(s.pop("timeout_seconds")))
    # Vendor modules are imported lazily: a rooftop on CSV should not pay for SOAP parsing.
    if kind == "rest":
        from integrations.dms.rest import RestBridgeAdapter

        return RestBridgeAdapter(base_url=s["base_url"], token=s["token"], **common)
    if kind == "cdk":
        from integrations.dms.cdk import CdkAdapter

        return CdkAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "tekion":
        from integrations.dms.tekion import TekionAdapter

        return TekionAdapter(clock=clock, **s, **common)
    if kind == "dealertrack":
        from integrations.dms.dealertrack import DealertrackAdapter

        return DealertrackAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "csv":
        from integrations.dms.csv_drop import CsvDropAdapter

        return CsvDropAdapter(timezone=timezone, clock=clock, rooftop_slug=rooftop_slug, **s)
    from integrations.dms.simulator import SimulatorAdapter

    return SimulatorAdapter(clock=clock, timezone=timezone, **s)
