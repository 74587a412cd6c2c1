"""Build a rooftop's DMS adapter from its ``[rooftop.dms]`` settings.

``settings`` is the TOML table minus ``kind`` and ``poll_seconds``. The config
loader calls :func:`validate_settings` first so a typo is a clear error at load
time ("dms.colour: unknown key") rather than a failing poll at 3 a.m.

Vendor kinds take their credentials under the names the vendor uses (DESIGN.md,
facts/dms.md): Fortellis' ``client_id`` / ``client_secret`` / ``subscription_id``,
OpenTrack's ``enterprise_code`` / ``company_number`` / ``server_name`` /
``username`` / ``password``, Tekion's ``app_id`` / ``secret_key`` / ``dealer_id``.
A problem names the key and never echoes a credential's value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.dms.base import LINE_STATUSES, DmsAdapter, utcnow
from integrations.dms.http import RetryPolicy

_VENDOR_COMMON = {"base_url", "timeout_seconds", "line_status_map"}

# kind -> (required keys, optional keys)
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "rest": ({"base_url", "token"}, {"timeout_seconds"}),
    "cdk": (
        {"client_id", "client_secret", "subscription_id"},
        _VENDOR_COMMON | {"token_url", "department_id", "delta_window_hours", "max_wait_seconds"},
    ),
    "tekion": (
        {"app_id", "secret_key", "dealer_id"},
        _VENDOR_COMMON | {"calls_per_15_minutes", "page_size"},
    ),
    "dealertrack": (
        {"enterprise_code", "company_number", "server_name", "username", "password"},
        _VENDOR_COMMON | {"modified_margin_minutes", "full_read_minutes", "write_back_codes"},
    ),
    "star": (set(), {"path", "url", "token", "timeout_seconds", "line_status_map"}),
    "csv": ({"path"}, {"columns", "delimiter", "encoding", "datetime_format"}),
    "simulator": (
        set(),
        {
            "seed",
            "speed",
            "ro_count",
            "start_offset_minutes",
            "days",
            "live",
            "day_minutes",
            "return_percent",
        },
    ),
}

# The kinds that can write customers' answers back (WritesLineAnswers), and the setting
# that turns it on: the dealer's own codes, so it is never on by default.
WRITE_BACK_SETTING: dict[str, str] = {"dealertrack": "write_back_codes"}


def writes_answers(kind: str, settings: Mapping[str, Any]) -> bool:
    """Whether a rooftop's adapter writes approvals and declines back into its DMS."""
    key = WRITE_BACK_SETTING.get(kind)
    return key is not None and bool(settings.get(key))


ADAPTER_SETTINGS: dict[str, set[str]] = {kind: req | opt for kind, (req, opt) in _KEYS.items()}
"""Every key allowed under ``[rooftop.dms]`` per kind (besides ``kind`` and ``poll_seconds``)."""

REQUIRED_SETTINGS: dict[str, set[str]] = {kind: set(req) for kind, (req, _) in _KEYS.items()}
"""The keys each kind cannot work without."""

SECRET_SETTINGS = frozenset({"token", "client_secret", "password", "secret_key", "username"})
"""Credentials: never shown on a page, in a log line or in an error message."""

CREDENTIAL_SETTINGS = SECRET_SETTINGS | {"client_id", "app_id"}
"""Secrets plus the vendor app's own identifiers, which errors and logs leave out too."""

_NUMBERS = {
    "timeout_seconds",
    "speed",
    "start_offset_minutes",
    "delta_window_hours",
    "max_wait_seconds",
    "modified_margin_minutes",
    "full_read_minutes",
    "day_minutes",
    "return_percent",
}
_INTEGERS = {"seed", "ro_count", "calls_per_15_minutes", "page_size", "days"}
_URLS = {"base_url", "token_url", "url"}


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with one setting's value, or None."""
    if key in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"dms.{key}: expected a whole number of 1 or more, got {value!r}"
    elif key in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return f"dms.{key}: expected a non-negative number, got {value!r}"
    elif key == "live":
        if not isinstance(value, bool):
            return f"dms.live: expected true or false, got {value!r}"
    elif key == "columns":
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            return 'dms.columns: expected a table of field = "CSV header"'
    elif key == "line_status_map":
        if not isinstance(value, Mapping):
            return 'dms.line_status_map: expected a table of "CODE" = "approved"'
        for code, status in value.items():
            if status not in LINE_STATUSES:
                return (
                    f"dms.line_status_map.{code}: expected one of {', '.join(LINE_STATUSES)}, "
                    f"got {status!r}"
                )
    elif key == "write_back_codes":
        wanted = {"approved", "declined"}
        if not isinstance(value, Mapping) or set(value) != wanted:
            return (
                'dms.write_back_codes: expected { approved = "CODE", declined = "CODE" }, '
                "the dealer's own LineStatus codes for the two answers"
            )
        for choice, code in value.items():
            if not isinstance(code, str) or not code.strip():
                return f"dms.write_back_codes.{choice}: expected a non-empty code"
    elif not isinstance(value, str) or not value.strip():
        # A credential's value is never repeated back: the message may be logged.
        return f"dms.{key}: expected a non-empty string"
    elif key in _URLS and not value.startswith(("http://", "https://")):
        return f"dms.{key}: expected an http(s) URL, got {value!r}"
    return None


def validate_settings(kind: str, settings: Mapping[str, Any]) -> list[str]:
    """Problems with a rooftop's DMS settings, each naming the key; empty when fine."""
    if kind not in _KEYS:
        return [f"dms.kind: unknown kind {kind!r} (expected one of {', '.join(sorted(_KEYS))})"]
    problems = [f"dms.{key} is missing" for key in sorted(REQUIRED_SETTINGS[kind] - set(settings))]
    for key, value in sorted(settings.items()):
        if key not in ADAPTER_SETTINGS[kind]:
            problems.append(f"dms.{key}: unknown key for kind {kind!r}")
        elif (problem := _problem(key, value)) is not None:
            problems.append(problem)
    if kind == "csv" and isinstance(settings.get("columns"), Mapping):
        from integrations.dms.csv_drop import COLUMN_FIELDS

        for field in sorted(set(settings["columns"]) - COLUMN_FIELDS):
            problems.append(f"dms.columns.{field}: unknown field")
    if kind == "star" and ("path" in settings) == ("url" in settings):
        problems.append("dms.path: give either path (a drop folder) or url (an HTTP endpoint)")
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
    if "line_status_map" in s:
        s["line_status_map"] = {str(k).upper(): v for k, v in s["line_status_map"].items()}
    # Vendor modules are imported lazily: a rooftop on CSV should not pay for SOAP parsing.
    if kind == "rest":
        from integrations.dms.rest import RestBridgeAdapter

        return RestBridgeAdapter(base_url=s["base_url"], token=s["token"], **common)
    if kind == "cdk":
        from integrations.dms.cdk import CdkAdapter

        return CdkAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "tekion":
        from integrations.dms.tekion import TekionAdapter

        return TekionAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "dealertrack":
        from integrations.dms.dealertrack import DealertrackAdapter

        return DealertrackAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "star":
        from integrations.dms.star import StarAdapter

        return StarAdapter(timezone=timezone, clock=clock, **s, **common)
    if kind == "csv":
        from integrations.dms.csv_drop import CsvDropAdapter

        return CsvDropAdapter(timezone=timezone, clock=clock, rooftop_slug=rooftop_slug, **s)
    from integrations.dms.simulator import SimulatorAdapter

    return SimulatorAdapter(clock=clock, timezone=timezone, **s)


CHECK_HINTS: dict[str, str] = {
    "rest": "check dms.base_url and dms.token with whoever runs the bridge",
    "cdk": (
        "client_id / client_secret are your Fortellis app's API key and secret; "
        "subscription_id is the dealer's subscription to CDK Drive Service Repair Order "
        "(the dealer activates your app in the Fortellis Marketplace)"
    ),
    "dealertrack": (
        "username / password are your OpenTrack vendor login from Dealertrack; "
        "enterprise_code, company_number and server_name come from the dealer, who must "
        "grant your vendor account access (OpenTrack error 311 means they have not)"
    ),
    "tekion": (
        "app_id / secret_key are your Tekion APC app's; dealer_id is the dealer's Tekion id, "
        "usable once the dealer has approved your app"
    ),
    "star": "check dms.path (a folder Pitwall may read and write) or dms.url and dms.token",
    "csv": "check dms.path: a folder Pitwall may read and write",
    "simulator": "the simulator needs nothing from outside",
}
"""What to check when a rooftop's DMS refuses `pitwall doctor`'s call, per kind."""
