"""Operator alerts: what is wrong, de-duplicated in the `alert` table, sent by e-mail or webhook.

One incident is one `alert` row (by key) and one notice; when the condition
clears the row is resolved and a recovery notice goes out. Conditions:

- `dms:<slug>`: the rooftop's DMS has not been read for `dms_stale_minutes`;
- `twilio:auth`: Twilio rejected the credentials (error 20003 newer than the last
  send), or the dispatcher opened it with `open_alert`; it clears on the next
  message sent after it opened. `twilio:sender:<slug>` (opened by the dispatcher
  when Twilio refuses a rooftop's sender) clears the same way for that rooftop;
- `outbox:backlog`: the oldest due message has waited `outbox_minutes`;
- `delivery:failures`: failed/undelivered share of the last hour's delivery
  outcomes above `failure_share`, with at least `failure_min_count` outcomes.

Several workers may evaluate at once: opening, notifying and resolving are each a
compare-and-set on the row, so only one of them sends a given notice.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.ops.logging import redact
from app.ops.metrics import as_utc
from app.ops.models import Alert
from app.repair_orders.models import DmsPollState

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

AUTH_ERROR_CODE = 20003
OUTCOME_STATES = ("delivered", "read", "failed", "undelivered")
FAILED_STATES = ("failed", "undelivered")


class AlertSettings(BaseSettings):
    """Where alerts go and when they fire (environment variables)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    webhook_url: str | None = Field(
        None, validation_alias=AliasChoices("PITWALL_ALERT_WEBHOOK_URL")
    )
    smtp_host: str | None = Field(None, validation_alias=AliasChoices("PITWALL_SMTP_HOST"))
    smtp_port: int = Field(25, validation_alias=AliasChoices("PITWALL_SMTP_PORT"))
    smtp_starttls: bool = Field(False, validation_alias=AliasChoices("PITWALL_SMTP_STARTTLS"))
    smtp_username: str | None = Field(None, validation_alias=AliasChoices("PITWALL_SMTP_USERNAME"))
    smtp_password: str | None = Field(
        None, validation_alias=AliasChoices("PITWALL_SMTP_PASSWORD"), repr=False
    )
    email_to: str | None = Field(None, validation_alias=AliasChoices("PITWALL_ALERT_EMAIL_TO"))
    email_from: str = Field(
        "pitwall@localhost", validation_alias=AliasChoices("PITWALL_ALERT_EMAIL_FROM")
    )
    dms_stale_minutes: int = Field(
        15, ge=1, validation_alias=AliasChoices("PITWALL_ALERT_DMS_STALE_MINUTES")
    )
    outbox_minutes: int = Field(
        10, ge=1, validation_alias=AliasChoices("PITWALL_ALERT_OUTBOX_MINUTES")
    )
    failure_share: float = Field(
        0.2, gt=0, le=1, validation_alias=AliasChoices("PITWALL_ALERT_FAILURE_SHARE")
    )
    failure_min_count: int = Field(
        10, ge=1, validation_alias=AliasChoices("PITWALL_ALERT_FAILURE_MIN_COUNT")
    )

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in (self.email_to or "").split(",") if a.strip()]


@dataclass(frozen=True)
class Notice:
    """One message to the operators: an incident opened, or it recovered."""

    key: str
    kind: str  # alert | recovery
    message: str
    opened_at: datetime
    claimed_at: datetime

    @property
    def subject(self) -> str:
        word = "ALERT" if self.kind == "alert" else "RECOVERED"
        return f"[Pitwall] {word}: {self.message}"[:200]


# --- conditions -------------------------------------------------------------------


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def stale_dms(session: Session, *, now: datetime, minutes: int) -> dict[str, str]:
    """Rooftops whose DMS has not been read successfully for `minutes`."""
    firing: dict[str, str] = {}
    rows = session.execute(
        select(Rooftop.slug, Rooftop.updated_at, DmsPollState)
        .join(DmsPollState, DmsPollState.rooftop_id == Rooftop.id, isouter=True)
        .where(Rooftop.active.is_(True))
    )
    for slug, loaded_at, state in rows:
        # A rooftop never read counts from when its configuration was loaded.
        since = (state.last_success_at if state else None) or loaded_at
        if now - since < timedelta(minutes=minutes):
            continue
        detail = f"rooftop '{slug}': DMS not read for {_minutes(now - since)} minutes"
        if state is not None and state.consecutive_failures:
            detail += f" ({state.consecutive_failures} failed polls"
            detail += f"; last error: {redact(state.last_error)})" if state.last_error else ")"
        firing[f"dms:{slug}"] = detail
    return firing


def twilio_auth_rejected(session: Session) -> dict[str, str]:
    """Twilio's last word on the credentials was 20003 (newer than any successful send)."""
    last_rejected = session.scalar(
        select(func.max(OutboundMessage.updated_at)).where(
            OutboundMessage.error_code == AUTH_ERROR_CODE
        )
    )
    if last_rejected is None:
        return {}
    last_sent = as_utc(session.scalar(select(func.max(OutboundMessage.sent_at))))
    rejected_at = as_utc(last_rejected)
    if last_sent is not None and rejected_at is not None and last_sent > rejected_at:
        return {}
    return {
        "twilio:auth": "Twilio rejected the credentials (error 20003): sending has stopped; "
        "check TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN"
    }


def outbox_backlog(session: Session, *, now: datetime, minutes: int) -> dict[str, str]:
    """The oldest due message has waited more than `minutes`."""
    oldest, count = session.execute(
        select(func.min(OutboundMessage.not_before), func.count()).where(
            OutboundMessage.state == "pending",
            OutboundMessage.not_before <= now - timedelta(minutes=minutes),
        )
    ).one()
    if not count:
        return {}
    return {
        "outbox:backlog": f"outbox backed up: {count} message(s) due for more than "
        f"{minutes} minutes (oldest due since {as_utc(oldest):%Y-%m-%d %H:%M} UTC); "
        "is a worker running?"
    }


def delivery_failures(
    session: Session, *, now: datetime, share: float, min_count: int
) -> dict[str, str]:
    """Failed/undelivered share of the last hour's outcomes is above `share`."""
    rows = session.execute(
        select(OutboundMessage.state, func.count())
        .where(
            OutboundMessage.state.in_(OUTCOME_STATES),
            OutboundMessage.updated_at >= now - timedelta(hours=1),
        )
        .group_by(OutboundMessage.state)
    )
    counts: dict[str, int] = {state: count for state, count in rows}
    total = sum(counts.values())
    failed = sum(counts.get(s, 0) for s in FAILED_STATES)
    if total < min_count or failed / total <= share:
        return {}
    return {
        "delivery:failures": f"delivery failures jumped: {failed} of {total} messages "
        f"({failed / total:.0%}) failed or undelivered in the last hour"
    }


def _still_rejected(session: Session, alert: Alert) -> bool:
    """An externally opened twilio:* alert holds until a message is sent after it opened."""
    query = select(func.count()).where(OutboundMessage.sent_at > alert.opened_at)
    if alert.key.startswith("twilio:sender:"):
        slug = alert.key.removeprefix("twilio:sender:")
        query = query.join(Rooftop, Rooftop.id == OutboundMessage.rooftop_id).where(
            Rooftop.slug == slug
        )
    return not session.scalar(query)


def firing_conditions(
    session: Session, *, now: datetime, settings: AlertSettings
) -> dict[str, str]:
    """Every condition firing now, key -> message."""
    firing: dict[str, str] = {}
    firing.update(stale_dms(session, now=now, minutes=settings.dms_stale_minutes))
    firing.update(twilio_auth_rejected(session))
    firing.update(outbox_backlog(session, now=now, minutes=settings.outbox_minutes))
    firing.update(
        delivery_failures(
            session, now=now, share=settings.failure_share, min_count=settings.failure_min_count
        )
    )
    open_twilio = session.scalars(
        select(Alert).where(Alert.resolved_at.is_(None), Alert.key.startswith("twilio:"))
    )
    for alert in open_twilio:
        if alert.key not in firing and _still_rejected(session, alert):
            firing[alert.key] = alert.message
    return firing


# --- the alert table --------------------------------------------------------------


def _rowcount(result: Any) -> int:
    counted: CursorResult[Any] = result
    return counted.rowcount


def open_alert(session: Session, *, key: str, message: str, now: datetime) -> bool:
    """Open incident `key` unless it is open already; True when this call opened it.

    The dispatcher calls it (e.g. `twilio:auth`); the alert job sends the notice.
    """
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    created = session.scalar(
        insert(Alert)
        .values(key=key, message=message, opened_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        # RETURNING, not rowcount: psycopg reports -1 for some single-row inserts.
        .returning(Alert.key)
    )
    if created is not None:
        return True
    reopened = session.execute(
        update(Alert)
        .where(Alert.key == key, Alert.resolved_at.is_not(None))
        .values(message=message, opened_at=now, notified_at=None, resolved_at=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(reopened) == 1


def evaluate_alerts(session: Session, *, now: datetime, settings: AlertSettings) -> list[Notice]:
    """Open, notify and resolve alerts for what fires now; returns the notices to send.

    Each notice is claimed (notified_at / resolved_at set) in this transaction, so
    commit before sending and call `release_notice` for an alert notice that failed.
    """
    firing = firing_conditions(session, now=now, settings=settings)
    for key, message in firing.items():
        open_alert(session, key=key, message=message, now=now)
    notices: list[Notice] = []
    for key in sorted(firing):
        claimed = session.execute(
            update(Alert)
            .where(Alert.key == key, Alert.resolved_at.is_(None), Alert.notified_at.is_(None))
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(claimed) == 1:
            alert = session.get(Alert, key, populate_existing=True)
            assert alert is not None
            notices.append(Notice(key, "alert", alert.message, alert.opened_at, now))
    cleared = session.scalars(
        select(Alert).where(Alert.resolved_at.is_(None), Alert.key.not_in(list(firing) or [""]))
    ).all()
    for alert in cleared:
        resolved = session.execute(
            update(Alert)
            .where(Alert.key == alert.key, Alert.resolved_at.is_(None))
            .values(resolved_at=now)
            .execution_options(synchronize_session=False)
        )
        # An incident nobody was told about needs no recovery notice.
        if _rowcount(resolved) == 1 and alert.notified_at is not None:
            notices.append(Notice(alert.key, "recovery", alert.message, alert.opened_at, now))
    return notices


def release_notice(session: Session, *, notice: Notice) -> None:
    """An alert notice could not be sent: let the next run try again."""
    if notice.kind != "alert":
        return
    session.execute(
        update(Alert)
        .where(Alert.key == notice.key, Alert.notified_at == notice.claimed_at)
        .values(notified_at=None)
        .execution_options(synchronize_session=False)
    )


# --- delivery ---------------------------------------------------------------------


class AlertNotifier:
    """Sends notices by SMTP and/or a webhook POST (Slack's incoming-webhook shape)."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        smtp_factory: Callable[..., Any] = smtplib.SMTP,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self._smtp_factory = smtp_factory
        self._http = http

    @property
    def channels(self) -> list[str]:
        found = []
        if self.settings.smtp_host and self.settings.recipients:
            found.append("email")
        if self.settings.webhook_url:
            found.append("webhook")
        return found

    def deliver(self, notice: Notice) -> bool:
        """True when at least one channel took the notice (or none is configured)."""
        channels = self.channels
        if not channels:
            log.warning("alert (no channel configured): %s", notice.subject)
            return True
        import httpx  # here, not at import: a worker without alert channels never loads it

        delivered = False
        for channel in channels:
            try:
                if channel == "email":
                    self._email(notice)
                else:
                    self._webhook(notice)
            except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
                log.error("could not send alert %s by %s: %s", notice.key, channel, exc)
            else:
                delivered = True
        return delivered

    def _email(self, notice: Notice) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["Subject"] = notice.subject
        mail["From"] = s.email_from
        mail["To"] = ", ".join(s.recipients)
        mail.set_content(_body(notice))
        with self._smtp_factory(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(mail)

    def _webhook(self, notice: Notice) -> None:
        payload = {
            "text": f"{notice.subject}\n{_body(notice)}",
            "key": notice.key,
            "kind": notice.kind,
            "message": notice.message,
            "opened_at": notice.opened_at.isoformat(),
        }
        import httpx

        url = self.settings.webhook_url or ""
        if self._http is not None:
            response = self._http.post(url, json=payload)
        else:
            response = httpx.post(url, json=payload, timeout=10)
        response.raise_for_status()


def _body(notice: Notice) -> str:
    if notice.kind == "alert":
        return (
            f"{notice.message}\n\nOpened {notice.opened_at:%Y-%m-%d %H:%M} UTC (key {notice.key}). "
            "You will get one recovery notice when it clears. Run `pitwall doctor` for details."
        )
    return (
        f"Recovered: {notice.message}\n\nOpened {notice.opened_at:%Y-%m-%d %H:%M} UTC, "
        f"cleared {notice.claimed_at:%Y-%m-%d %H:%M} UTC (key {notice.key})."
    )
