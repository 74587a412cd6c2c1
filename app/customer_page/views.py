"""The customer's page under /c/<token>: no login, a link per text, POSTs with a CSRF token.

GET only reads (it counts the open and the day's visit, which are measures, never
state the customer or the shop acts on). Every change is a POST carrying the page's
CSRF token. A link that is unknown, revoked or expired answers the same plain 404 in
the customer's language (the store's number when the link was real), never a trace
and never anyone's data.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.customer_page import answers, i18n, plain, ratelimit
from app.customer_page.bookings import SlotTaken, book, open_slots
from app.customer_page.links import Resolved, record_open, resolve
from app.customer_page.models import Booking, LinePhoto, PageVisit
from app.customer_page.page import first_name, lines_view, status_view
from app.customer_page.photos import PhotoStoreError, photo_store
from app.customer_page.tokens import csrf_ok, csrf_token
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, SettingsDep
from app.repair_orders.models import RepairOrder, RoLine
from app.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_FILES = {"customer-page.js": "text/javascript", "customer-page.css": "text/css"}
POLL_SECONDS = 15


@router.get("/static/customer-page/{name}")
def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return FileResponse(
        STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "public, max-age=300"}
    )


def limiter_of(request: Request) -> ratelimit.Limiter:
    """This app's own rate limiter (one per app, so two apps in a process do not share)."""
    state = request.app.state
    found: ratelimit.Limiter | None = getattr(state, "customer_page_limiter", None)
    if found is None:
        found = ratelimit.Limiter()
        state.customer_page_limiter = found
    return found


def _open(request: Request, session: Session, token: str) -> Resolved | Response:
    """The link behind a token, or the answer to give instead (429 or the plain 404)."""
    ip = plain.client_ip(request)
    limiter = limiter_of(request)
    if not ratelimit.allow_request(limiter, ip=ip, token=token):
        return plain.busy(request)
    resolved = resolve(session, token, now=utcnow())
    if resolved.problem == "unknown":
        ratelimit.count_unknown(limiter, ip)
        # A link we cannot place still gets the store's number when there is one store.
        stores = session.scalars(select(Rooftop).where(Rooftop.active.is_(True)).limit(2)).all()
        if len(stores) == 1:
            resolved = Resolved(None, None, None, stores[0], "unknown")
    return resolved if resolved.ok else plain.gone(request, resolved)


def _page_context(
    session: Session, resolved: Resolved, token: str, language: str, secret: str, now: datetime
) -> dict[str, Any]:
    ro, rooftop = resolved.ro, resolved.rooftop
    assert ro is not None and rooftop is not None and resolved.link is not None
    lines = lines_view(session, ro=ro)
    closed = ro.stage in ("closed", "canceled")
    booked = session.scalar(
        select(Booking)
        .where(Booking.repair_order_id == ro.id, Booking.state == "requested")
        .order_by(Booking.id.desc())
        .limit(1)
    )
    return {
        "lang": language,
        "t": lambda key, **values: i18n.t(language, key, **values),
        "token": token,
        "csrf": csrf_token(secret, resolved.link.token_hash),
        "vehicle": ro.vehicle.label if ro.vehicle else "",
        "customer_first_name": resolved.customer.first_name if resolved.customer else None,
        "advisor": first_name(ro.advisor_name),
        "store_name": rooftop.name,
        "call_number": rooftop.service_desk or rooftop.sms_from,
        "text_number": rooftop.sms_from,
        "status": status_view(
            session, ro=ro, rooftop=rooftop, language=language, awaiting=len(lines.awaiting)
        ),
        "lines": lines,
        "slots": [
            {
                "value": slot.start.isoformat(),
                "label": i18n.day_and_time(slot.start, rooftop.settings.zone, language),
            }
            for slot in open_slots(session, rooftop=rooftop, now=now)
        ]
        if closed and lines.declined and booked is None
        else [],
        "offer_booking": closed and bool(lines.declined) and booked is None,
        "booked": _booked_text(booked, rooftop.settings.zone, language),
        "updated": i18n.clock(now, rooftop.settings.zone, language),
        "poll_seconds": POLL_SECONDS,
        "notice": None,
        "error": None,
    }


def _booked_text(booking: Booking | None, zone: ZoneInfo, language: str) -> str | None:
    """What the page says of the RO's booking request, if there is one."""
    if booking is None:
        return None
    if booking.slot_start is None:
        return i18n.t(language, "callback_asked")
    return i18n.t(language, "booked", time=i18n.day_and_time(booking.slot_start, zone, language))


def _count_visit(session: Session, resolved: Resolved, now: datetime) -> None:
    """The first open of this message's link, and the first visit of the day for the RO."""
    link, ro, rooftop = resolved.link, resolved.ro, resolved.rooftop
    assert link is not None and ro is not None and rooftop is not None and link.customer_id
    record_open(link, now=now)
    day = now.astimezone(rooftop.settings.zone).date()
    exists = session.scalar(
        select(PageVisit.id).where(
            PageVisit.repair_order_id == ro.id,
            PageVisit.customer_id == link.customer_id,
            PageVisit.day == day,
        )
    )
    if exists is None:
        try:
            with session.begin_nested():
                session.add(
                    PageVisit(
                        rooftop_id=rooftop.id,
                        repair_order_id=ro.id,
                        customer_id=link.customer_id,
                        link_id=link.id,
                        day=day,
                        stage=ro.stage,
                        first_at=now,
                    )
                )
        except IntegrityError:
            pass  # a second tab counted the day a moment ago


@router.get("/c/{token}", response_class=HTMLResponse)
def customer_page(
    request: Request,
    token: str,
    database: DatabaseDep,
    settings: SettingsDep,
    answered: int | None = None,
) -> Response:
    """The RO's page for its customer."""
    now = utcnow()
    with database.transaction() as session:
        found = _open(request, session, token)
        if isinstance(found, Response):
            return found
        language = plain.language_of(found, request)
        context = _page_context(session, found, token, language, settings.require_secret_key(), now)
        assert found.ro is not None and found.rooftop is not None
        if answered is not None and answered < 2**31:
            answer = answers.answer_of(session, answer_id=answered, ro_id=found.ro.id)
            if answer is not None:
                advisor = context["advisor"] or found.rooftop.name
                context["notice"] = i18n.t(language, "thanks", advisor=advisor)
                context["answered"] = answer.lines
        _count_visit(session, found, now)
        return templates.TemplateResponse(request, "customer_page/page.html", context)


@router.get("/c/{token}/status.json")
def customer_page_status(request: Request, token: str, database: DatabaseDep) -> Response:
    """What the page's script polls: the status block, re-rendered, and its version."""
    now = utcnow()
    with database.reading() as session:
        found = _open(request, session, token)
        if isinstance(found, Response):
            return JSONResponse({"gone": True}, status_code=found.status_code)
        assert found.ro is not None and found.rooftop is not None
        language = plain.language_of(found, request)
        lines = lines_view(session, ro=found.ro)
        status = status_view(
            session,
            ro=found.ro,
            rooftop=found.rooftop,
            language=language,
            awaiting=len(lines.awaiting),
        )
        context = {
            "status": status,
            "t": lambda key, **v: i18n.t(language, key, **v),
            "updated": i18n.clock(now, found.rooftop.settings.zone, language),
            "lang": language,
        }
        html = templates.get_template("customer_page/_status.html").render(context)
        return JSONResponse(
            {
                "version": status.version,
                "lines": ",".join(str(line.id) for line in lines.awaiting),
                "html": html,
            }
        )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


def _open_for_post(
    request: Request, session: Session, token: str, settings: Settings, csrf: str | None
) -> tuple[Resolved, str, str] | Response:
    """A POST's link, the customer's language and the secret, once its CSRF token checks out;
    else the answer to give instead (429, the plain 404, or refused)."""
    found = _open(request, session, token)
    if isinstance(found, Response):
        return found
    language = plain.language_of(found, request)
    assert found.link is not None and found.ro is not None
    secret = settings.require_secret_key()
    if not csrf_ok(secret, found.link.token_hash, csrf):
        return plain.refused(request, language)
    return found, language, secret


@router.post("/c/{token}/review", response_class=HTMLResponse)
async def review_answers(
    request: Request, token: str, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """The one confirmation screen: each choice and the total approved. Writes nothing."""
    form = await _form(request)
    now = utcnow()
    with database.reading() as session:
        opened = _open_for_post(request, session, token, settings, form.get("csrf_token"))
        if isinstance(opened, Response):
            return opened
        found, language, secret = opened
        assert found.ro is not None
        checked = answers.review(session, ro=found.ro, choices=answers.parse_choices(form))
        context = _page_context(session, found, token, language, secret, now)
        if checked.missing or not checked.chosen:
            context["error"] = " ".join(
                [i18n.t(language, "no_longer", what=g) for g in checked.gone]
                + ([i18n.t(language, "choose_each")] if checked.missing or not checked.gone else [])
            )
            return templates.TemplateResponse(
                request, "customer_page/page.html", context, status_code=422
            )
        context["review"] = checked
        return templates.TemplateResponse(request, "customer_page/confirm.html", context)


@router.post("/c/{token}/answer", response_class=HTMLResponse)
async def record_answers(
    request: Request, token: str, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Record the confirmed choices (once), then show the page with the thanks."""
    form = await _form(request)
    now = utcnow()
    with database.transaction() as session:
        opened = _open_for_post(request, session, token, settings, form.get("csrf_token"))
        if isinstance(opened, Response):
            return opened
        found, language, secret = opened
        recorded = answers.record(
            session,
            resolved=found,
            choices=answers.parse_choices(form),
            language=language,
            ip=plain.client_ip(request),
            user_agent=request.headers.get("user-agent"),
            now=now,
            shown_digest=str(form["shown"]) if "shown" in form else None,
        )
        if recorded.answer is not None:
            return RedirectResponse(f"/c/{token}?answered={recorded.answer.id}", status_code=303)
        context = _page_context(session, found, token, language, secret, now)
        messages = [i18n.t(language, "no_longer", what=g) for g in recorded.gone]
        context["error"] = " ".join(messages) or i18n.t(language, "already")
        if recorded.already and not recorded.gone:
            context["error"] = i18n.t(language, "already")
        if recorded.changed:
            context["error"] = i18n.t(language, "changed")
        return templates.TemplateResponse(
            request, "customer_page/page.html", context, status_code=409
        )


@router.post("/c/{token}/book", response_class=HTMLResponse)
async def book_work(
    request: Request, token: str, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Book declined work at an open slot, or ask for a call back."""
    form = await request.form()
    now = utcnow()
    with database.transaction() as session:
        csrf = form.get("csrf_token")
        opened = _open_for_post(
            request, session, token, settings, csrf if isinstance(csrf, str) else None
        )
        if isinstance(opened, Response):
            return opened
        found, language, secret = opened
        assert found.ro is not None
        # One booking per RO, and only once it has closed: a second tab, a resubmit or a
        # forwarded link gets the booking already made, never another seat or task. The
        # RO's row lock (PostgreSQL; SQLite writes one at a time) serialises two at once.
        session.execute(
            select(RepairOrder.id).where(RepairOrder.id == found.ro.id).with_for_update()
        )
        existing = session.scalar(
            select(Booking.id).where(
                Booking.repair_order_id == found.ro.id, Booking.state == "requested"
            )
        )
        if existing is not None or found.ro.stage not in ("closed", "canceled"):
            anchor = f"#booked-{existing}" if existing is not None else ""
            return RedirectResponse(f"/c/{token}{anchor}", status_code=303)
        declined = {line.id: line for line in lines_view(session, ro=found.ro).declined}
        chosen = [
            declined[int(v)]
            for v in form.getlist("line")
            if isinstance(v, str) and v.isdigit() and int(v) in declined
        ]
        callback = form.get("callback") is not None
        slot = _parse_slot(form.get("slot")) if not callback else None
        error = None
        if not chosen:
            error = i18n.t(language, "choose_line")
        elif not callback and slot is None:
            error = i18n.t(language, "book_pick")
        else:
            try:
                booking = book(session, resolved=found, lines=chosen, slot=slot, now=now)
                return RedirectResponse(f"/c/{token}#booked-{booking.id}", status_code=303)
            except SlotTaken:
                error = i18n.t(language, "slot_taken")
        context = _page_context(session, found, token, language, secret, now)
        context["error"] = error
        return templates.TemplateResponse(
            request, "customer_page/page.html", context, status_code=422
        )


def _parse_slot(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@router.get("/c/{token}/photos/{photo_id}")
def line_photo(
    request: Request, token: str, photo_id: int, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """A photo of one of this RO's lines, and only through a live link."""
    with database.reading() as session:
        found = _open(request, session, token)
        if isinstance(found, Response):
            return found
        assert found.ro is not None
        photo = session.get(LinePhoto, photo_id) if 0 < photo_id < 2**31 else None
        line = session.get(RoLine, photo.ro_line_id) if photo else None
        if photo is None or line is None or line.repair_order_id != found.ro.id:
            return plain.gone(
                request, Resolved(None, None, found.customer, found.rooftop, "unknown")
            )
        try:
            data = photo_store(settings.media_dir).get(photo.storage_key)
        except PhotoStoreError as failed:
            log.error("photo %s not served: %s", photo.id, failed)
            return Response("The photo cannot be shown right now.", status_code=503)
        if data is None:
            return plain.gone(
                request, Resolved(None, None, found.customer, found.rooftop, "unknown")
            )
        return Response(
            data, media_type=photo.content_type, headers={"Cache-Control": "private, max-age=300"}
        )
