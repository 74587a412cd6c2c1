"""The dealer configuration written back as TOML: what `pitwall config load` would load.

Edits made in the admin pages live in the database; exporting them keeps
config-as-code possible (export, commit the file, load it anywhere). The file
round-trips: loading an export changes nothing.
"""

from __future__ import annotations

from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import RooftopConfig, parse_dealer_config
from app.dealers.models import DealerGroup, Rooftop

HEADER = (
    "# Dealer configuration exported by Pitwall from {group!r}.\n"
    "# Load it with `pitwall config load FILE` (loading it unchanged changes nothing).\n"
)


def _without_none(value: Any) -> Any:
    # TOML has no null: a key left out reads back as its default (None for optional keys).
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def dealer_document(session: Session, *, group: DealerGroup) -> dict[str, Any]:
    """The group and its active rooftops as the TOML file's dict, in file order."""
    rooftops = session.scalars(
        select(Rooftop)
        .where(Rooftop.group_id == group.id, Rooftop.active.is_(True))
        .order_by(Rooftop.id)
    )
    return {
        "group": {
            "name": group.name,
            "default_region": group.default_region,
            "recovery_window_days": group.recovery_window_days,
        },
        "rooftop": [_rooftop_table(r) for r in rooftops],
    }


def _rooftop_table(rooftop: Rooftop) -> dict[str, Any]:
    config = RooftopConfig.model_validate(rooftop.config).model_dump(mode="json")
    # Scalars first, then [rooftop.dms] and the other tables, as a person writes the file.
    scalars = {k: v for k, v in config.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in config.items() if isinstance(v, dict)}
    return _without_none(scalars | tables)


def dealer_toml(session: Session, *, group: DealerGroup) -> str:
    """The TOML text; checked by the loader's own parser before it is handed out."""
    document = dealer_document(session, group=group)
    text = HEADER.format(group=group.name) + tomli_w.dumps(document)
    parse_dealer_config(document, source="export")  # an export that cannot load is a bug
    return text
