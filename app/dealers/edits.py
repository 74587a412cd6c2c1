"""Rooftop settings changed in the admin pages: validated as the TOML file would be, audited.

The rooftop's `config` column is the validated TOML document, so an edit here is the
same as changing the file and loading it; `pitwall config export` writes it back out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.audit import record_change
from app.config import ConfigError, RooftopConfig
from app.dealers.models import Rooftop
from app.dealers.service import forget_cached_rooftops

# Keys the admin pages may change; everything else stays config-as-code only.
EDITABLE_KEYS = ("status_map", "store_hours", "holidays", "templates")


def change_rooftop_setting(
    session: Session, *, rooftop: Rooftop, key: str, value: Any, actor: str, now: datetime
) -> bool:
    """Set one key of a rooftop's configuration; False when it was already so.

    Raises ConfigError (naming the rooftop and key) when the value would not load from TOML.
    """
    if key not in EDITABLE_KEYS:
        raise ConfigError(f"rooftop[{rooftop.slug}]", key, "cannot be changed in the admin pages")
    source = f"rooftop[{rooftop.slug}]"
    try:
        validated = RooftopConfig.model_validate({**rooftop.config, key: value})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or key
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(source, where, message) from None
    new_config = validated.model_dump(mode="json")
    old_value, new_value = rooftop.config.get(key), new_config.get(key)
    if old_value == new_value:
        return False
    rooftop.config = new_config
    record_change(
        session,
        group_id=rooftop.group_id,
        actor=actor,
        subject=f"rooftop {rooftop.slug}: {key}",
        old=old_value,
        new=new_value,
        at=now,
    )
    session.flush()
    forget_cached_rooftops()
    return True
