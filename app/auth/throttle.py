"""Login rate limits, kept in the database so they hold across every web process.

Failed logins are counted per email + client IP (MAX_PER_EMAIL_IP in EMAIL_IP_WINDOW:
someone guessing one person's password) and per client IP alone (MAX_PER_IP in
IP_WINDOW: someone spraying many emails). A successful login clears its email + IP
count. Blocked attempts are not counted, so a guesser cannot keep a person locked out
past the window, and the lock applies to the guesser's IP only.

The client IP is `request.client.host`. Behind Caddy or nginx that is the proxy's
address unless FORWARDED_ALLOW_IPS names the proxy (deploy/systemd/pitwall-web.service
sets 127.0.0.1): then the app (app/guards.py) puts the forwarded client there. Unset, it
believes X-Forwarded-For from nobody, loopback included. Never trust it from anyone
else: a guesser would pick a fresh "IP" for every try.

Two processes checking at the same instant may each let one more try through; the
limits are about stopping thousands of guesses, not the sixth.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.models import LoginAttempt

MAX_PER_EMAIL_IP = 5
EMAIL_IP_WINDOW = timedelta(minutes=15)
MAX_PER_IP = 50
IP_WINDOW = timedelta(hours=1)
_KEEP = max(EMAIL_IP_WINDOW, IP_WINDOW)


def _email(email: str) -> str:
    return email.strip().lower()[:254]


def login_wait(session: Session, *, email: str, ip: str, now: datetime) -> timedelta | None:
    """How long until this email + IP may try again, or None when it may try now."""
    by_email_ip = select(LoginAttempt.attempted_at).where(
        LoginAttempt.email == _email(email),
        LoginAttempt.ip == ip,
        LoginAttempt.attempted_at > now - EMAIL_IP_WINDOW,
    )
    by_ip = select(LoginAttempt.attempted_at).where(
        LoginAttempt.ip == ip, LoginAttempt.attempted_at > now - IP_WINDOW
    )
    waits = []
    for query, limit, window in (
        (by_email_ip, MAX_PER_EMAIL_IP, EMAIL_IP_WINDOW),
        (by_ip, MAX_PER_IP, IP_WINDOW),
    ):
        # The limit-th most recent failure: once it leaves the window, one more try is allowed.
        nth = session.scalar(
            query.order_by(LoginAttempt.attempted_at.desc()).offset(limit - 1).limit(1)
        )
        if nth is not None:
            waits.append(max(nth + window - now, timedelta(seconds=1)))
    return max(waits) if waits else None


def record_failed_login(session: Session, *, email: str, ip: str, now: datetime) -> None:
    """Count a failed login; rows older than every window are pruned on the way."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < now - _KEEP))
    session.add(LoginAttempt(email=_email(email), ip=ip[:45], attempted_at=now))


def clear_failed_logins(session: Session, *, email: str, ip: str) -> None:
    """A successful login forgets this email + IP's failures; other emails' still count."""
    session.execute(
        delete(LoginAttempt).where(LoginAttempt.email == _email(email), LoginAttempt.ip == ip)
    )
