"""Settings from the environment: what differs per deployment (database, public URL,
Twilio credentials). What differs per dealer is the TOML file: `app.dealer_config`.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# The dealer file's schema lives in app.dealer_config; these names stay importable from here,
# where callers have always found them.
from app.dealer_config import STAGES as STAGES
from app.dealer_config import ConfigError as ConfigError
from app.dealer_config import DealerConfig as DealerConfig
from app.dealer_config import DmsConfig as DmsConfig
from app.dealer_config import DmsKind as DmsKind
from app.dealer_config import Language as Language
from app.dealer_config import QuietHours as QuietHours
from app.dealer_config import RooftopConfig as RooftopConfig
from app.dealer_config import Stage as Stage
from app.dealer_config import load_dealer_config as load_dealer_config
from app.dealer_config import parse_dealer_config as parse_dealer_config

DEMO_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEMO_AUTH_TOKEN = "sandbox-auth-token"
DEMO_SECRET_KEY = "demo-only-secret-key"


class Settings(BaseSettings):
    """The environment contract of DESIGN.md, validated at start-up."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        "sqlite:///./pitwall.db", validation_alias=AliasChoices("PITWALL_DATABASE_URL")
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("PITWALL_PUBLIC_URL")
    )
    twilio_account_sid: str = Field(
        DEMO_ACCOUNT_SID, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: str = Field(
        DEMO_AUTH_TOKEN, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN"), repr=False
    )
    twilio_api_url: str = Field(
        "https://api.twilio.com", validation_alias=AliasChoices("PITWALL_TWILIO_API_URL")
    )
    secret_key: str | None = Field(
        None, validation_alias=AliasChoices("PITWALL_SECRET_KEY"), repr=False
    )
    demo: bool = Field(False, validation_alias=AliasChoices("PITWALL_DEMO"))
    metrics_token: str | None = Field(
        None, validation_alias=AliasChoices("PITWALL_METRICS_TOKEN"), repr=False
    )
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=AliasChoices("PITWALL_LOG_FORMAT")
    )
    # uvicorn's variable, read by the app itself: unset, X-Forwarded-For is believed from
    # nobody (loopback included); "127.0.0.1" behind a proxy on this host.
    forwarded_allow_ips: str | None = Field(
        None, validation_alias=AliasChoices("FORWARDED_ALLOW_IPS")
    )
    # Photos advisors add to repair lines for the customer's page (kept on this disk).
    media_dir: str = Field("./media", validation_alias=AliasChoices("PITWALL_MEDIA_DIR"))

    @field_validator("public_url", "twilio_api_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(f"must be a sqlite:// or postgresql+psycopg:// URL, got {value!r}")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; spare users the +psycopg suffix.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    def require_secret_key(self) -> str:
        """The cookie-signing key; only the demo may run without one."""
        if self.secret_key:
            return self.secret_key
        if self.demo:
            return DEMO_SECRET_KEY
        raise ConfigError("environment", "PITWALL_SECRET_KEY", "is required outside the demo")

    def require_twilio_credentials(self) -> None:
        """Outside the demo, real Twilio credentials, unless Twilio is a sandbox on this host.

        The demo's token is public: a deployment that forgot TWILIO_AUTH_TOKEN would accept
        webhooks anyone can sign with it.
        """
        if self.demo or _is_loopback(self.twilio_api_url):
            return
        for name, value, demo_value in (
            ("TWILIO_ACCOUNT_SID", self.twilio_account_sid, DEMO_ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", self.twilio_auth_token, DEMO_AUTH_TOKEN),
        ):
            if not value or value == demo_value:
                raise ConfigError(
                    "environment",
                    name,
                    "is not set (the demo's public value is in use): set the account's own, "
                    "or point PITWALL_TWILIO_API_URL at a sandbox on this host",
                )


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
