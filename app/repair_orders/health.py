"""Each rooftop's poll health in `dms_poll_state`, with credentials kept out of its errors."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from app.dealers.models import Rooftop
from app.deps import Database
from app.repair_orders.models import DmsPollState

log = logging.getLogger(__name__)

_SECRET_KEYS = ("token", "client_secret", "password", "client_id", "username")


def record_health(
    database: Database,
    rooftop_id: int,
    started: datetime,
    duration_ms: int,
    counts: dict[str, int],
    error: str | None,
) -> None:
    """Store a poll's outcome in `dms_poll_state`; never raises (the poll's result stands)."""
    try:
        with database.transaction() as session:
            state = session.get(DmsPollState, rooftop_id)
            if state is None:
                state = DmsPollState(rooftop_id=rooftop_id, consecutive_failures=0)
                session.add(state)
            state.last_attempt_at = started
            state.last_duration_ms = duration_ms
            state.last_counts = counts
            if error:
                state.consecutive_failures = (state.consecutive_failures or 0) + 1
                state.last_error = error[:2000]
            else:
                state.consecutive_failures = 0
                state.last_success_at = started
                state.last_error = None
    except Exception:
        log.exception("could not record poll health of rooftop %s", rooftop_id)


_BEARER = re.compile(r"(?i)(bearer\s+|token=|secret=|password=)[^\s&\"']+")


def redact(message: str, rooftop: Rooftop) -> str:
    """Errors are shown to admins: never with a credential in them."""
    try:
        settings = rooftop.settings.dms.adapter_settings()
    except Exception:
        settings = {}
    for key in _SECRET_KEYS:
        value = settings.get(key)
        if isinstance(value, str) and len(value) >= 4:
            message = message.replace(value, "***")
    return _BEARER.sub(r"\1***", message)
