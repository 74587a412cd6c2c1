"""Each rooftop's poll health in `dms_poll_state`, with credentials kept out of its errors."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.dealers.models import Rooftop
from app.repair_orders.models import DmsPollState
from integrations.dms.registry import CREDENTIAL_SETTINGS


def record_health(
    session: Session,
    rooftop_id: int,
    started: datetime,
    duration_ms: int,
    counts: dict[str, int],
    error: str | None,
) -> None:
    """Store a poll's outcome in `dms_poll_state`: one UPDATE (an INSERT the first time)."""
    values: dict[str, Any] = {
        "last_attempt_at": started,
        "last_duration_ms": duration_ms,
        "last_counts": counts,
    }
    if error:
        values.update(
            consecutive_failures=DmsPollState.consecutive_failures + 1, last_error=error[:2000]
        )
    else:
        values.update(consecutive_failures=0, last_success_at=started, last_error=None)
    updated = session.execute(
        update(DmsPollState)
        .where(DmsPollState.rooftop_id == rooftop_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount:  # type: ignore[attr-defined]
        return
    values["consecutive_failures"] = 1 if error else 0
    session.add(DmsPollState(rooftop_id=rooftop_id, **values))


_BEARER = re.compile(r"(?i)(bearer\s+|token=|secret=|password=)[^\s&\"']+")


def redact(message: str, rooftop: Rooftop) -> str:
    """Errors are shown to admins: never with a credential in them."""
    try:
        settings = rooftop.settings.dms.adapter_settings()
    except Exception:
        settings = {}
    for key in sorted(CREDENTIAL_SETTINGS):
        value = settings.get(key)
        if isinstance(value, str) and len(value) >= 4:
            message = message.replace(value, "***")
    return _BEARER.sub(r"\1***", message)
