"""Dealer groups (tenants) and their rooftops (stores)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.config import RooftopConfig
from app.db import Base, UTCDateTime, utcnow


def new_holdout_key() -> str:
    """A fresh random key for a group's holdout draw (256 bits, hex)."""
    return secrets.token_hex(32)


class DealerGroup(Base):
    __tablename__ = "dealer_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    recovery_window_days: Mapped[int] = mapped_column(Integer, default=365)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Keys the follow-up holdout draw (app/followups/holdout.py): without it nobody can tell
    # in advance which RO will be held out. Never shown; a NULL is filled on first use.
    holdout_key: Mapped[str | None] = mapped_column(String(64), default=new_holdout_key)

    rooftops: Mapped[list[Rooftop]] = relationship(back_populates="group", order_by="Rooftop.id")


class Rooftop(Base):
    """One store. Lookup fields are columns; the full validated config is `config`."""

    __tablename__ = "rooftop"
    __table_args__ = (UniqueConstraint("group_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    sms_from: Mapped[str | None] = mapped_column(String(32), index=True)
    whatsapp_from: Mapped[str | None] = mapped_column(String(32), index=True)
    messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    service_desk: Mapped[str | None] = mapped_column(String(32))
    dms_kind: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    group: Mapped[DealerGroup] = relationship(back_populates="rooftops")

    @property
    def settings(self) -> RooftopConfig:
        """The rooftop's validated configuration as loaded from TOML."""
        # A dict comparison per access (every answer reads settings several times); a new
        # instance (every claimed batch loads its rooftops afresh) finds the validated
        # model in a process-wide cache keyed by the config's canonical JSON, because a
        # validation costs milliseconds and a dump of a few KB of JSON microseconds.
        cached: tuple[dict[str, Any], RooftopConfig] | None = self.__dict__.get("_settings_cache")
        if cached is None or cached[0] != self.config:
            text = json.dumps(self.config, sort_keys=True, default=str)
            cached = (json.loads(text), _validated(text))
            self.__dict__["_settings_cache"] = cached
        return cached[1]


@lru_cache(maxsize=256)
def _validated(config_json: str) -> RooftopConfig:
    """A rooftop config validated once per distinct value (the model is frozen: shared)."""
    return RooftopConfig.model_validate(json.loads(config_json))
