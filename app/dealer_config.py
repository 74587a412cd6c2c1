"""The schema of the dealer configuration file (TOML), and its loader.

The TOML file holds what differs per dealer (rooftops, numbers, status maps, cadences)
and is loaded into the database by `pitwall config load`. Every problem is a
`ConfigError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.dealers.hours import StoreHours, parse_day_hours, parse_store_hours

Stage = Literal[
    "checked_in",
    "diagnosing",
    "awaiting_approval",
    "awaiting_parts",
    "in_repair",
    "quality_check",
    "ready_for_pickup",
    "closed",
    "canceled",
]
STAGES: tuple[Stage, ...] = get_args(Stage)
DmsKind = Literal["rest", "cdk", "tekion", "dealertrack", "star", "csv", "simulator"]
Language = Literal["en", "es", "fr"]


class ConfigError(Exception):
    """A configuration problem, named by where it is, which key, and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}")


# --- dealer configuration (TOML) -------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _e164(value: str, region: str = "US") -> str:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {value!r} ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"not a valid phone number: {value!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PhoneE164 = Annotated[str, Field(description="E.164 phone number")]


class QuietHours(BaseModel):
    """A nightly window in local time, e.g. 21:00-08:00; `off` disables it."""

    model_config = ConfigDict(frozen=True)
    start: time | None
    end: time | None

    @property
    def enabled(self) -> bool:
        return self.start is not None and self.end is not None

    def contains(self, local: time) -> bool:
        """True when `local` (a wall-clock time) falls inside the quiet window."""
        if self.start is None or self.end is None:
            return False
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        if text.strip().lower() == "off":
            return cls(start=None, end=None)
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f"expected HH:MM-HH:MM or 'off', got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"not a time of day in {text!r}")
        return cls(start=time(h1, m1), end=time(h2, m2))


class GroupConfig(_Strict):
    name: str = Field(min_length=1)
    default_region: str = "US"
    recovery_window_days: int = Field(365, ge=1, le=3650)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (use an ISO 3166 code such as 'US')")
        return value.upper()


class DmsConfig(BaseModel):
    """`[rooftop.dms]`: kind and poll interval here; the rest is the adapter's to check."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: DmsKind
    poll_seconds: int = Field(60, ge=5, le=86400)

    def adapter_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BookingCapacity(_Strict):
    """`[rooftop.booking]`: when customers may book declined work from their page.

    Slots are whole hours in the rooftop's zone on the named days, `per_hour` each;
    `per_hour = 0` offers only a call back.
    """

    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    hours: str = "08:00-16:00"
    per_hour: int = Field(2, ge=0, le=100, strict=True)
    days_ahead: int = Field(14, ge=1, le=90, strict=True)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        unknown = [d for d, raw in zip(days, value, strict=True) if d not in WEEKDAYS or not raw]
        if unknown or not days:
            raise ValueError(f"expected weekdays such as ['mon', 'tue'], got {value!r}")
        return days

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        window = QuietHours.parse(value)
        if not window.enabled or window.start is None or window.end is None:
            raise ValueError(f"expected HH:MM-HH:MM, got {value!r}")
        if window.start >= window.end or window.start.minute or window.end.minute:
            raise ValueError(
                f"expected whole hours, start before end (e.g. '08:00-16:00'), got {value!r}"
            )
        return value

    @property
    def weekdays(self) -> frozenset[int]:
        """Python weekday numbers (Monday 0)."""
        return frozenset(WEEKDAYS.index(d) for d in self.days)

    @property
    def hour_range(self) -> range:
        window = QuietHours.parse(self.hours)
        assert window.start is not None and window.end is not None
        return range(window.start.hour, window.end.hour)


class RooftopConfig(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1)
    timezone: str
    sms_from: str | None = None
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-f]{32}$")
    # Who answers STOP/START/HELP on SMS (app/customers/carrier.py): Twilio's standard
    # handling, a Messaging Service's Advanced Opt-Out, or nobody but Pitwall ("off").
    # Unset: "off" for a short code, else "standard"; an inbound OptOutType always wins.
    carrier_keywords: Literal["standard", "advanced", "off"] | None = None
    send_rate_per_second: float = Field(1.0, gt=0, le=1000)
    whatsapp_from: str | None = None
    service_desk: str | None = None
    quiet_hours: str = "21:00-08:00"
    followup_days: list[int] = Field(default_factory=lambda: [3, 10, 30])
    # Share of declined-work plans drawn into a no-follow-up control group (0 turns it off).
    followup_holdout_percent: int = Field(10, ge=0, le=50, strict=True)
    language: Language = "en"
    shadow: bool = False
    daily_cap: int = Field(3, ge=1, le=50)
    status_texts_default: bool = True
    followups_default: bool = False
    store_hours: str = "Mon-Fri 7:00-18:00, Sat 8:00-16:00"
    # Dates the store is closed all day, and dates with other hours ("8:00-12:00", "closed").
    holidays: list[date] = Field(default_factory=list)
    special_hours: dict[date, str] = Field(default_factory=dict)
    promise_margin_minutes: int = Field(30, ge=0, le=1440)
    stage_alert_minutes: dict[Stage, int] = Field(default_factory=dict)
    dms: DmsConfig
    status_map: dict[str, Stage] = Field(default_factory=dict)
    whatsapp_templates: dict[Stage | Literal["followup", "textback"], str] = Field(
        default_factory=dict
    )
    templates: dict[str, str] = Field(default_factory=dict)
    # The customer's page: how long a link still opens after the RO closes (or after a
    # follow-up minted it), and the capacity offered for booking declined work.
    customer_page_days_after_close: int = Field(14, ge=0, le=365, strict=True)
    booking: BookingCapacity = Field(default_factory=BookingCapacity)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        if value not in _iana_zones():
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'America/Los_Angeles')")
        try:
            ZoneInfo(value)
        except ZoneInfoNotFoundError:
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @field_validator("store_hours")
    @classmethod
    def _store_hours(cls, value: str) -> str:
        parse_store_hours(value)
        return value

    @field_validator("special_hours")
    @classmethod
    def _special_hours(cls, value: dict[date, str]) -> dict[date, str]:
        for day, text in value.items():
            try:
                parse_day_hours(text)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc} (or 'closed')") from None
        return value

    @model_validator(mode="after")
    def _holiday_or_special(self) -> RooftopConfig:
        both = sorted(set(self.holidays) & set(self.special_hours))
        if both:
            raise ValueError(
                f"holidays: {both[0]} is also in special_hours; a day is one or the other"
            )
        return self

    @field_validator("followup_days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 730 for d in value):
            raise ValueError("days must be between 0 and 730")
        if sorted(set(value)) != value:
            raise ValueError("days must be increasing and distinct, e.g. [3, 10, 30]")
        return value

    @field_validator("whatsapp_templates")
    @classmethod
    def _content_sids(cls, value: dict[str, str]) -> dict[str, str]:
        for stage, sid in value.items():
            if not re.fullmatch(r"HX[0-9a-f]{32}", sid):
                raise ValueError(f"{stage}: {sid!r} is not a Content SID (HX + 32 hex)")
        return value

    @model_validator(mode="after")
    def _senders(self) -> RooftopConfig:
        if not self.sms_from and not self.messaging_service_sid:
            raise ValueError("needs sms_from or messaging_service_sid")
        return self

    @cached_property
    def hours(self) -> StoreHours:
        """Weekly hours, holidays and special days: whether the store is open, and when."""
        return StoreHours.build(
            store_hours=self.store_hours,
            zone=self.zone,
            holidays=self.holidays,
            special_hours=self.special_hours,
        )

    @cached_property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DealerConfig(_Strict):
    group: GroupConfig
    rooftop: list[RooftopConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_slugs(self) -> DealerConfig:
        seen: set[str] = set()
        for rooftop in self.rooftop:
            if rooftop.slug in seen:
                raise ValueError(f"rooftop slug {rooftop.slug!r} appears twice")
            seen.add(rooftop.slug)
        return self


_PHONE_FIELDS = ("sms_from", "whatsapp_from", "service_desk")


@cache
def _iana_zones() -> set[str]:
    # available_timezones() scans the filesystem; the answer does not change while we run.
    return available_timezones()


def _key_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """Turn a pydantic error location into a TOML-ish key: rooftop[bayview-toyota].dms.kind."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            slug = (
                node[item].get("slug")
                if item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts[-1] = f"{parts[-1]}[{slug or item}]"
            node = node[item] if item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def parse_dealer_config(data: dict[str, Any], source: str) -> DealerConfig:
    """Validate a parsed TOML document; raise ConfigError naming source, key and problem."""
    try:
        config = DealerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "is required"
        raise ConfigError(source, _key_path(first["loc"], data), message) from None
    region = config.group.default_region
    normalised_rooftops = []
    for rooftop in config.rooftop:
        updates: dict[str, str] = {}
        for name in _PHONE_FIELDS:
            value = getattr(rooftop, name)
            if value is None:
                continue
            try:
                updates[name] = _e164(value, region)
            except ValueError as exc:
                raise ConfigError(source, f"rooftop[{rooftop.slug}].{name}", str(exc)) from None
        normalised_rooftops.append(rooftop.model_copy(update=updates))
    return config.model_copy(update={"rooftop": normalised_rooftops})


def load_dealer_config(path: Path) -> DealerConfig:
    """Read and validate a dealer TOML file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            "(file)",
            f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc)) from None
    return parse_dealer_config(data, source)
