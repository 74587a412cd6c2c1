"""Browser sessions: a signed cookie holding who is logged in and the session's CSRF token.

The cookie is signed (itsdangerous, PITWALL_SECRET_KEY), not encrypted; it holds
no secrets beyond the CSRF token that the page shows anyway. There is no server-side
session table: a session ends at logout (the cookie is cleared), after IDLE_TIMEOUT
without a request, after ABSOLUTE_TIMEOUT in any case, or when the user is deactivated.
Each login starts a new session id and CSRF token, so a cookie planted before login
(session fixation) never becomes a logged-in one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE_NAME = "pitwall_session"
IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# Re-issue the cookie (sliding idle expiry) at most this often, not on every poll.
REFRESH_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class WebSession:
    """One browser's session. `user_id` is None before login (the login form's CSRF)."""

    sid: str
    csrf: str
    user_id: int | None
    started_at: datetime
    seen_at: datetime

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None


def new_session(*, now: datetime, user_id: int | None = None) -> WebSession:
    """A fresh session id and CSRF token; used for anonymous visitors and at every login."""
    return WebSession(
        sid=secrets.token_urlsafe(18),
        csrf=secrets.token_urlsafe(24),
        user_id=user_id,
        started_at=now,
        seen_at=now,
    )


def touched(web_session: WebSession, *, now: datetime) -> WebSession | None:
    """The session with a new last-seen time, or None when it need not be re-issued yet."""
    if now - web_session.seen_at < REFRESH_AFTER:
        return None
    return replace(web_session, seen_at=now)


class SessionCodec:
    """Turns sessions into signed cookie values and back, refusing expired ones."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="pitwall.web-session")

    def dumps(self, web_session: WebSession) -> str:
        payload: dict[str, Any] = {
            "sid": web_session.sid,
            "csrf": web_session.csrf,
            "uid": web_session.user_id,
            "start": int(web_session.started_at.timestamp()),
            "seen": int(web_session.seen_at.timestamp()),
        }
        return self._serializer.dumps(payload)

    def loads(self, value: str | None, *, now: datetime) -> WebSession | None:
        """The session in a cookie value, or None if forged, malformed or expired."""
        if not value:
            return None
        try:
            payload = self._serializer.loads(value)
            started = datetime.fromtimestamp(int(payload["start"]), tz=now.tzinfo)
            seen = datetime.fromtimestamp(int(payload["seen"]), tz=now.tzinfo)
            web_session = WebSession(
                sid=str(payload["sid"]),
                csrf=str(payload["csrf"]),
                user_id=int(payload["uid"]) if payload["uid"] is not None else None,
                started_at=started,
                seen_at=seen,
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if now - seen > IDLE_TIMEOUT or now - started > ABSOLUTE_TIMEOUT:
            return None
        return web_session
