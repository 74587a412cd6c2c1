"""Request dependencies shared by every domain's views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, HTTPException, Path, Request

import app.models  # noqa: F401  # every mapper known before the first session, in any process
from app.config import Settings
from app.db import Database as Database  # where the views have always found it
from integrations.twilio.webhooks import build_url, is_valid_signature


# `async` although they never wait: FastAPI runs a plain `def` dependency in a worker thread,
# a thread hop per request for reading an attribute.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


# A row id in a URL. Ids are INTEGER columns (int4 on PostgreSQL): a larger number is
# a 422, not a database error (500) when it is bound to the query.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="row id")]

SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


@dataclass(frozen=True)
class TwilioForm:
    """A form Twilio posted, its signature checked against PITWALL_PUBLIC_URL + path + query."""

    fields: dict[str, str]
    idempotency_token: str | None

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


async def signed_twilio_form(request: Request, settings: SettingsDep) -> TwilioForm:
    """Reject (403, nothing written) any webhook whose X-Twilio-Signature does not verify.

    The URL Twilio signed is the public one: behind a proxy `request.url` is not it.
    """
    form = await request.form()
    pairs = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    url = build_url(settings.public_url, request.url.path, request.url.query)
    signature = request.headers.get("X-Twilio-Signature")
    if not is_valid_signature(settings.twilio_auth_token, url, pairs, signature):
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    # NUL cannot be stored in PostgreSQL text; drop it (after the signature check) so the
    # customer's message is kept rather than refused on every retry.
    fields = {key: value.replace("\x00", "") for key, value in pairs}
    return TwilioForm(
        fields=fields, idempotency_token=request.headers.get("I-Twilio-Idempotency-Token")
    )


TwilioFormDep = Annotated[TwilioForm, Depends(signed_twilio_form)]


T = TypeVar("T")

# Twilio webhooks do their database work in at most this many threads at once (the rest
# wait their turn without a thread). The work is Python with short database waits: more
# threads than it takes to cover the waits only fight over the GIL. Measured at 8 texts
# in flight: 4 threads answered ~20% more texts per second than FastAPI's shared 40.
WEBHOOK_THREADS = 4


async def in_webhook_thread(request: Request, work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` in a worker thread of the webhooks' own lane of this app.

    Its own lane: a burst of webhooks never takes the threads that pages and the API use.
    """
    state = request.app.state
    limiter = getattr(state, "webhook_threads", None)
    if limiter is None:  # made in the app's event loop, the first time it is needed
        limiter = state.webhook_threads = anyio.CapacityLimiter(WEBHOOK_THREADS)
    return await anyio.to_thread.run_sync(partial(work, *args), limiter=limiter)
