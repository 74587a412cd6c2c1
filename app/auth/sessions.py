"""Browser sessions: a `web_session` row per logged-in browser, its id in a signed cookie.

The cookie carries a random 256-bit session id; the database keeps only its SHA-256
(like API tokens), so a copy of the database does not log anyone in. Because the
server holds the session, it can end it at once: logout revokes the row (a copied
cookie stops working), and deactivating a user or changing their password revokes
all of theirs. A session also ends IDLE_TIMEOUT after the last request and
ABSOLUTE_TIMEOUT after login, checked on the server, whatever the cookie says.

`last_seen_at` is written at most once per TOUCH_AFTER: the board polls every few
seconds and must not write a row each time. Idle expiry is therefore exact to a minute.

Before login a visitor gets an anonymous cookie that holds only the login form's CSRF
token (no row: a stranger loading /login writes nothing). Logging in always starts a
brand-new session id, so a cookie planted before login (session fixation) never
becomes a logged-in one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, contains_eager

from app.auth.models import User, WebSessionRecord

COOKIE_NAME = "pitwall_session"
IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_AFTER = timedelta(minutes=1)
# Ended sessions stay listed this long (who logged in from where), then go.
KEEP_ENDED = timedelta(days=7)


def hash_session_id(sid: str) -> str:
    # 256-bit random ids: a fast hash is enough, and the lookup stays indexed.
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionCookie:
    """What a valid cookie holds: a session id (logged in) or only a login-form CSRF token."""

    sid: str | None
    csrf: str | None
    started_at: datetime | None = None

    @property
    def authenticated(self) -> bool:
        return self.sid is not None


def anonymous_cookie(*, now: datetime) -> SessionCookie:
    """A fresh CSRF token for the login form; nothing is stored."""
    return SessionCookie(sid=None, csrf=secrets.token_urlsafe(24), started_at=now)


class SessionCodec:
    """Signs cookie values and reads them back; forged or stale ones read as None."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="pitwall.web-session.v2")

    def dumps(self, cookie: SessionCookie) -> str:
        payload: dict[str, Any]
        if cookie.sid is not None:
            payload = {"sid": cookie.sid}
        else:
            started = cookie.started_at.timestamp() if cookie.started_at else 0
            payload = {"anon": cookie.csrf, "start": int(started)}
        return self._serializer.dumps(payload)

    def loads(self, value: str | None, *, now: datetime) -> SessionCookie | None:
        if not value:
            return None
        try:
            payload = self._serializer.loads(value)
            if "sid" in payload:
                return SessionCookie(sid=str(payload["sid"]), csrf=None)
            started = datetime.fromtimestamp(int(payload["start"]), tz=now.tzinfo)
            csrf = str(payload["anon"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if now - started > IDLE_TIMEOUT:
            return None  # a login form left open for an hour: show a fresh one
        return SessionCookie(sid=None, csrf=csrf, started_at=started)


def start_session(
    session: Session, *, user_id: int, now: datetime, user_agent: str = "", ip: str = ""
) -> tuple[str, WebSessionRecord]:
    """Store a new session for `user_id`; returns (session id for the cookie, row).

    Also prunes long-ended sessions, so the table stays small without a job.
    """
    sid = secrets.token_urlsafe(32)
    record = WebSessionRecord(
        sid_hash=hash_session_id(sid),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_TIMEOUT,
        user_agent=user_agent[:200],
        ip=ip[:45],
    )
    session.add(record)
    session.execute(delete(WebSessionRecord).where(WebSessionRecord.expires_at < now - KEEP_ENDED))
    session.flush()
    return sid, record


def live_session(
    session: Session, *, sid: str, now: datetime
) -> tuple[WebSessionRecord, User] | None:
    """The unrevoked, unexpired session with this id and its still active user, or None.

    Moves `last_seen_at` on when it is more than TOUCH_AFTER old (one write a minute).
    """
    found = session.execute(
        select(WebSessionRecord, User)
        .join(User, User.id == WebSessionRecord.user_id)
        .where(
            WebSessionRecord.sid_hash == hash_session_id(sid),
            WebSessionRecord.revoked_at.is_(None),
            WebSessionRecord.expires_at > now,
            WebSessionRecord.last_seen_at > now - IDLE_TIMEOUT,
            User.active.is_(True),
        )
    ).first()
    if found is None:
        return None
    record, user = found
    if now - record.last_seen_at >= TOUCH_AFTER:
        record.last_seen_at = now
    return record, user


def end_session(session: Session, *, sid: str, now: datetime) -> None:
    """Logout: revoke this session so its cookie, wherever it was copied, stops working."""
    session.execute(
        update(WebSessionRecord)
        .where(
            WebSessionRecord.sid_hash == hash_session_id(sid), WebSessionRecord.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )


def revoke_user_sessions(session: Session, *, user_id: int, now: datetime) -> int:
    """Revoke every open session of a user (deactivated, new password); returns how many."""
    result = session.execute(
        update(WebSessionRecord)
        .where(WebSessionRecord.user_id == user_id, WebSessionRecord.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_group_session(
    session: Session, *, group_id: int, session_id: int, now: datetime
) -> bool:
    """An admin ends one session of their group; False when there is no such open session."""
    record = session.get(WebSessionRecord, session_id)
    if record is None or record.revoked_at is not None or record.user.group_id != group_id:
        return False
    record.revoked_at = now
    return True


def open_sessions(session: Session, *, group_id: int, now: datetime) -> list[WebSessionRecord]:
    """The group's sessions that still work, the most recently active first."""
    return list(
        session.scalars(
            select(WebSessionRecord)
            .join(WebSessionRecord.user)
            .options(contains_eager(WebSessionRecord.user))
            .where(
                User.group_id == group_id,
                User.active.is_(True),
                WebSessionRecord.revoked_at.is_(None),
                WebSessionRecord.expires_at > now,
                WebSessionRecord.last_seen_at > now - IDLE_TIMEOUT,
            )
            .order_by(WebSessionRecord.last_seen_at.desc())
            .limit(200)
        )
    )
