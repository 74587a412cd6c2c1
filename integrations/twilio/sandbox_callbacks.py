"""Background delivery of signed status callbacks, as Twilio sends them.

One worker thread drains a time-ordered queue, so a create response never waits
on Pitwall's callback endpoint and callbacks can be delayed, doubled or reordered.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

import httpx

from integrations.twilio.sandbox_state import API_VERSION, Fault, SandboxState, StoredMessage
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature

logger = logging.getLogger(__name__)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    sid: str = field(compare=False)
    status: str = field(compare=False)
    error_code: int | None = field(compare=False, default=None)
    post: bool = field(compare=False, default=True)
    apply: bool = field(compare=False, default=True)


class CallbackDispatcher:
    """Moves sandbox messages through their lifecycle and posts status callbacks."""

    def __init__(self, state: SandboxState, auth_token: str, *, timeout: float = 5.0) -> None:
        self._state = state
        self._auth_token = auth_token
        self._timeout = timeout
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="twilio-sandbox-callbacks", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; pending callbacks are dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def clear(self) -> None:
        """Drop callbacks not yet posted (``/_sandbox/reset``)."""
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is queued or being posted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def schedule_lifecycle(
        self, message: StoredMessage, fault: Fault | None, *, delay_s: float, post: bool
    ) -> None:
        """Queue sent -> delivered (or the failure a fault asks for) for ``message``.

        Statuses always advance in the sandbox's own record; ``fault`` only bends
        what the callbacks say (twice, reversed) so Pitwall's ordering logic is tested.
        """
        kind = fault.kind if fault else None
        if kind == "fail":
            assert fault is not None
            final = fault.callback_status or "undelivered"
            steps = [("sent", None), (final, fault.error_code or 30003)]
        else:
            steps = [("sent", None), ("delivered", None)]
        if message.error_code is not None:
            # The sandbox itself decided this fails (e.g. WhatsApp window closed).
            steps = [("failed", message.error_code)]
        now = time.monotonic()
        jobs = [
            _Job(now + delay_s * (i + 1), 0, message.sid, status, code, post)
            for i, (status, code) in enumerate(steps)
        ]
        if kind == "out_of_order" and len(jobs) == 2:
            # Post the later status first; the record still ends at the final one.
            first, second = jobs
            jobs = [
                _Job(first.due, 0, message.sid, second.status, second.error_code, post, True),
                _Job(second.due, 0, message.sid, first.status, first.error_code, post, False),
            ]
        if kind == "duplicate":
            jobs = [job for job in jobs for _ in range(2)]
        with self._cond:
            for job in jobs:
                job.seq = next(self._seq)
                heapq.heappush(self._heap, job)
            self._cond.notify_all()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                with self._cond:
                    while not self._stopping and (
                        not self._heap or self._heap[0].due > time.monotonic()
                    ):
                        wait = self._heap[0].due - time.monotonic() if self._heap else None
                        self._cond.wait(wait)
                    if self._stopping:
                        return
                    job = heapq.heappop(self._heap)
                    self._in_flight += 1
                try:
                    self._deliver(client, job)
                except Exception:  # a broken receiver must not kill the worker
                    logger.exception("sandbox status callback for %s failed", job.sid)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _deliver(self, client: httpx.Client, job: _Job) -> None:
        if job.apply:
            self._state.set_status(job.sid, job.status, job.error_code)
        message = self._state.get_message(job.sid)
        if message is None or not job.post or not message.status_callback:
            return
        params = callback_params(message, job.status, job.error_code)
        signature = compute_signature(self._auth_token, message.status_callback, params)
        entry: dict[str, object] = {
            "url": message.status_callback,
            "params": params,
            "status_code": None,
        }
        try:
            response = client.post(
                message.status_callback,
                data=params,
                headers={SIGNATURE_HEADER: signature, "User-Agent": "TwilioProxy/1.1"},
            )
            entry["status_code"] = response.status_code
        except httpx.HTTPError as exc:
            entry["error"] = str(exc)
        self._state.record_callback(entry)


def callback_params(message: StoredMessage, status: str, error_code: int | None) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback URL."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "From": message.from_ or "",
        "MessageSid": message.sid,
        "MessageStatus": status,
        "SmsSid": message.sid,
        "SmsStatus": status,
        "To": message.to,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params
