"""Twilio adapter for :class:`~integrations.twilio.base.MessageGateway`.

Uses the official ``twilio`` client, pointed at ``api_url`` (Twilio itself or the
local sandbox). Requests go through :class:`ThreadLocalHttpClient`: one
``requests.Session`` per thread, no client-side retries (the outbox retries and
reconciles), a timeout on every call, and the last response's headers kept per
thread so ``Retry-After`` survives into :class:`SendError`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate, parsedate_to_datetime
from typing import Any

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.base.version import Version
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from integrations.twilio.base import (
    CLOCK_SKEW_MARGIN_SECONDS,
    ErrorKind,
    OutgoingMessage,
    SendError,
    SentMessage,
)
from integrations.twilio.http_client import ThreadLocalHttpClient, form_encode, prepare_request

__all__ = ["ThreadLocalHttpClient", "TwilioGateway", "form_encode", "prepare_request"]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
_LIST_PAGE_SIZE = 50


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _network_error(exc: requests.RequestException) -> SendError:
    """Classify a network failure by whether the request can have reached Twilio."""
    if isinstance(exc, requests.ConnectTimeout):
        return SendError(f"connect timeout: {exc}", kind=ErrorKind.TRANSIENT)
    if isinstance(exc, requests.ConnectionError):
        cause: BaseException | None = exc.args[0] if exc.args else None
        reason = getattr(cause, "reason", cause)
        # Refused / DNS failure: no connection, so no request body left this host.
        if isinstance(reason, NewConnectionError):
            return SendError(f"could not connect: {reason}", kind=ErrorKind.TRANSIENT)
        return SendError(f"connection lost, outcome unknown: {exc}", kind=ErrorKind.AMBIGUOUS)
    return SendError(f"no answer, outcome unknown: {exc}", kind=ErrorKind.AMBIGUOUS)


def _to_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unset(value: Any) -> Any:
    """``values.unset`` for None, so the client leaves the parameter out."""
    return values.unset if value is None else value


def _sent(instance: Any) -> SentMessage:
    created = instance.date_created if isinstance(instance.date_created, datetime) else None
    return SentMessage(
        sid=str(instance.sid),
        status=str(instance.status or ""),
        num_segments=_to_int(instance.num_segments),
        date_created=created,
    )


class TwilioGateway:
    """Sends and looks up messages through Twilio's REST API. Thread-safe."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
    ) -> None:
        self._account_sid = account_sid
        self._http = ThreadLocalHttpClient(timeout=timeout)
        client = Client(account_sid, auth_token, http_client=self._http)
        # TWILIO_EDGE/TWILIO_REGION from the environment would rewrite the host
        # (api.edge.region.twilio.com) and bypass api_url; Pitwall's setting decides.
        client.edge = None
        client.region = None
        # Every v2010 resource (including next_page_uri paging) is resolved against
        # this Domain's base_url, so one assignment routes all calls.
        client.api.base_url = api_url.rstrip("/")
        self._client = client
        # Build the lazy resource objects once, before threads race to create them.
        self._account = client.api.v2010.accounts(account_sid)
        self._messages = self._account.messages
        # The create call's own request (see `send`): the library's URL, auth and headers.
        self._create_url = f"{client.api.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (account_sid, auth_token)
        self._headers = tuple(client.get_headers("POST", None).items())

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _rest_error(self, exc: TwilioException, action: str) -> SendError:
        status = _to_int(getattr(exc, "status", None))
        code = _to_int(getattr(exc, "code", None))
        if code is not None and code == status:
            # twilio-python puts the HTTP status in `code` when the body has none.
            code = None
        retry_after = parse_retry_after(self._http.last_headers().get("Retry-After"))
        detail = getattr(exc, "msg", None) or str(exc)
        return SendError.from_code(
            f"twilio {action} failed: {detail}",
            code=code,
            http_status=status,
            retry_after=retry_after,
        )

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilioRestException as exc:
            raise self._rest_error(exc, action) from exc
        except requests.RequestException as exc:
            raise _network_error(exc) from exc
        except TwilioException as exc:
            # RFC 9457 service errors and other library errors carry status/code too.
            raise self._rest_error(exc, action) from exc
        except ValueError as exc:
            # An unreadable 2xx body: Twilio may well have created the message.
            raise SendError(
                f"twilio {action}: unreadable response: {exc}", kind=ErrorKind.AMBIGUOUS
            ) from exc

    def send(self, msg: OutgoingMessage) -> SentMessage:
        """Create the message; raise :class:`SendError` with a classified ``kind``.

        The create call, the one made per text, is posted by the gateway itself through
        the same HTTP client, with the headers and form the ``twilio`` library sends;
        the library's per-call work (its parameter handling, headers worked out per
        call, a MessageInstance with every field deserialised) cost a fifth of a send's
        CPU (docs/SCALING.md). An error answer is read by the library's own parser, so
        a refusal reads as it did through the library.
        """
        form: dict[str, object] = {"To": msg.to}
        for key, value in (
            ("From", msg.from_),
            ("MessagingServiceSid", msg.messaging_service_sid),
            ("Body", msg.body),
            ("ContentSid", msg.content_sid),
            (
                "ContentVariables",
                json.dumps(msg.content_variables, separators=(",", ":"))
                if msg.content_variables is not None
                else None,
            ),
            ("StatusCallback", msg.status_callback),
            ("ValidityPeriod", msg.validity_period),
        ):
            if value is not None:
                form[key] = value
        sent: SentMessage = self._call("send", self._create, form)
        return sent

    def _create(self, form: dict[str, object]) -> SentMessage:
        response = self._http.request(
            "POST", self._create_url, data=form, headers=dict(self._headers), auth=self._auth
        )
        if not 200 <= response.status_code < 300:
            raise Version.exception("POST", self._create_url, response, "Unable to create record")
        payload = json.loads(response.text)  # a ValueError: `_call` says AMBIGUOUS
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
        created = payload.get("date_created")
        parsed = parsedate(created) if isinstance(created, str) else None
        return SentMessage(
            sid=str(payload.get("sid")),
            status=str(payload.get("status") or ""),
            num_segments=_to_int(payload.get("num_segments")),
            date_created=datetime(*parsed[:6], tzinfo=UTC) if parsed else None,
        )

    def find_existing(
        self,
        *,
        to: str,
        from_: str | None,
        messaging_service_sid: str | None,
        body: str | None,
        content_sid: str | None,
        created_after: datetime,
    ) -> SentMessage | None:
        """Return the newest message an earlier ambiguous attempt created, if any.

        Twilio's list has no content SID, so a template send (no body) matches any
        message to the same recipient (and sender / service) inside the window.
        """
        if created_after.tzinfo is None:
            created_after = created_after.replace(tzinfo=UTC)
        since = created_after - timedelta(seconds=CLOCK_SKEW_MARGIN_SECONDS)
        # With a Messaging Service Twilio picks the sender, so From is unknown.
        list_from = from_ if messaging_service_sid is None else None
        instances = self._call(
            "list",
            self._messages.list,
            to=to,
            from_=_unset(list_from),
            limit=_LIST_PAGE_SIZE,
            page_size=_LIST_PAGE_SIZE,
        )
        best: SentMessage | None = None
        for instance in instances:
            created = instance.date_created
            if not isinstance(created, datetime) or created < since:
                continue
            if messaging_service_sid and instance.messaging_service_sid not in (
                None,
                messaging_service_sid,
            ):
                continue
            if body is not None and instance.body != body:
                continue
            if body is None and content_sid is None:
                continue
            candidate = _sent(instance)
            if best is None or (created > (best.date_created or created)):
                best = candidate
        return best

    def fetch(self, sid: str) -> SentMessage:
        """Fetch one message by SID."""
        return _sent(self._call("fetch", self._messages(sid).fetch))

    def check_credentials(self) -> str:
        """Fetch the account; return its friendly name or raise SendError (AUTH on 401)."""
        account = self._call("account check", self._account.fetch)
        return str(account.friendly_name or self._account_sid)
