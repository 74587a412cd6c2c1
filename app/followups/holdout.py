"""The follow-up holdout: which declined-work plans send nothing, so recovery has a baseline.

When a plan is made, a keyed draw decides whether it joins the control group: an
HMAC-SHA256 of the rooftop's slug and the RO number under the dealer group's own
random key, read as a number in [0, 1), held out when it falls below the rooftop's
`followup_holdout_percent`. The same RO always draws the same number, nobody without
the key can tell beforehand which RO will be held out, and the draw is independent of
the customer, the work and the advisor. The outcome and the percent in force are
written on the plan and never recomputed, so changing the percent moves only plans
made afterwards.

A held-out plan is tracked exactly like a followed one (its lines, touches, stops and
recoveries); only the step that would queue a message cancels the touch instead.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.dealers.models import DealerGroup, Rooftop, new_holdout_key
from app.followups.models import FollowupPlan

HELD_OUT = "held out: this plan is in the no-follow-up control group"


def draw(*, key: str, rooftop_slug: str, ro_number: str) -> float:
    """The RO's number in [0, 1): the first 64 bits of HMAC-SHA256(key, slug NUL ro_number)."""
    message = f"{rooftop_slug}\x00{ro_number}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_held_out(*, key: str, rooftop_slug: str, ro_number: str, percent: int) -> bool:
    """True when this RO falls in the first `percent` percent of the draw."""
    return draw(key=key, rooftop_slug=rooftop_slug, ro_number=ro_number) * 100 < percent


def group_key(session: Session, *, group_id: int) -> str:
    """The group's draw key; a group without one (made before the key existed) gets one now.

    Compare-and-set on NULL: two workers filling it at once end with one key, the first's.
    """
    key = session.scalar(select(DealerGroup.holdout_key).where(DealerGroup.id == group_id))
    if key:
        return key
    session.execute(
        update(DealerGroup)
        .where(DealerGroup.id == group_id, DealerGroup.holdout_key.is_(None))
        .values(holdout_key=new_holdout_key())
        .execution_options(synchronize_session=False)
    )
    stored = session.scalar(select(DealerGroup.holdout_key).where(DealerGroup.id == group_id))
    assert stored is not None
    return stored


def assign(session: Session, *, plan: FollowupPlan, rooftop: Rooftop, ro_number: str) -> None:
    """Draw a new plan into the holdout or not, and record the draw with the percent in force."""
    percent = rooftop.settings.followup_holdout_percent
    plan.holdout_percent = percent
    plan.holdout = percent > 0 and is_held_out(
        key=group_key(session, group_id=rooftop.group_id),
        rooftop_slug=rooftop.slug,
        ro_number=ro_number,
        percent=percent,
    )
