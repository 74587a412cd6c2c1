"""The first text a phone gets from a rooftop names the store and says how to stop texts.

CTIA's rule for a first message, whatever it is about: a customer whose car is already in
the shop when Pitwall goes live first hears "our technicians are now working on ...", and
that text must still say who is writing and how to opt out.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.db import chunks, one_of
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.messaging.templates import render

# A text the phone has, or is about to have: a pending one may still be superseded.
_REACHED = ("claimed", "sent", "delivered", "read", "undelivered")


def is_first_text(session: Session, *, phone_id: int, rooftop_id: int) -> bool:
    """True when this rooftop has never texted this phone."""
    return not session.scalar(
        select(
            exists().where(
                OutboundMessage.phone_id == phone_id,
                OutboundMessage.rooftop_id == rooftop_id,
                OutboundMessage.state.in_(_REACHED),
            )
        )
    )


def texted_phones(session: Session, *, phone_ids: Collection[int], rooftop_id: int) -> set[int]:
    """The phones among `phone_ids` this rooftop has texted (`is_first_text` for a page)."""
    texted: set[int] = set()
    for chunk in chunks(sorted(set(phone_ids))):
        texted.update(
            session.scalars(
                select(OutboundMessage.phone_id)
                .where(
                    one_of(session, OutboundMessage.phone_id, chunk),
                    OutboundMessage.rooftop_id == rooftop_id,
                    OutboundMessage.state.in_(_REACHED),
                )
                .distinct()
            )
        )
    return texted


def with_first_text_notice(body: str, *, rooftop: Rooftop, language: str) -> str:
    """The body, with the store's name in front and the opt-out line after if it lacks them."""
    if rooftop.name not in body:
        body = f"{rooftop.name}: {body}"
    if "STOP" not in body:
        footer = render(
            "first_text_notice",
            language=language,
            context={"rooftop": rooftop.name},
            overrides=rooftop.settings.templates,
        )
        body = f"{body.rstrip()}\n{footer}"
    return body
