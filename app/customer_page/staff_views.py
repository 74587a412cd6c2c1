"""The advisor's side of the customer's page, on the RO page: notes, photos, revoking links.

The RO page loads this panel by itself (htmx), so the board's pages need not know it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.deps import CsrfDep, WebUser, WebUserDep, require_role
from app.customer_page.links import revoke_links
from app.customer_page.models import CustomerLink, LineNote, LinePhoto, PageAnswer
from app.customer_page.photos import (
    PHOTO_MAX_BYTES,
    PHOTOS_PER_LINE,
    PhotoRefused,
    PhotoStoreError,
    new_key,
    photo_store,
    photo_type,
)
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, RowId, SettingsDep
from app.repair_orders.models import RoLine
from app.reports.customer_page import customer_page_measures
from app.web.queries import visible_repair_order, visible_rooftops
from app.web.templating import not_found, render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
NOTE_MAX_CHARS = 1000


def _line(session: Session, user: WebUser, ro_id: int, line_id: int) -> RoLine | None:
    ro = visible_repair_order(session, principal=user.principal, ro_id=ro_id)
    line = session.get(RoLine, line_id) if ro is not None else None
    return line if line is not None and line.repair_order_id == ro_id else None


def _result(request: Request, user: WebUser, ro_id: int, message: str, status: int) -> HTMLResponse:
    context = {"title": "Customer page", "message": message, "ro_id": ro_id}
    return render(
        request, "customer_page/staff_result.html", context, user=user, status_code=status
    )


def _back(ro_id: int) -> RedirectResponse:
    return RedirectResponse(f"/repair-orders/{ro_id}#customer-page", status_code=303)


@router.get("/repair-orders/{ro_id}/customer-page", response_class=HTMLResponse)
def panel(request: Request, ro_id: RowId, user: WebUserDep, database: DatabaseDep) -> Response:
    """Links sent and opened, each line's notes and photos, with the forms to add them."""
    with database.reading() as session:
        ro = visible_repair_order(session, principal=user.principal, ro_id=ro_id)
        if ro is None:
            return not_found(request, user)
        links = session.execute(
            select(
                func.count(CustomerLink.id),
                func.count(CustomerLink.first_opened_at),
                func.count(CustomerLink.revoked_at),
            ).where(CustomerLink.repair_order_id == ro.id)
        ).one()
        ids = [line.id for line in ro.lines]
        notes: dict[int, list[LineNote]] = {}
        for note in session.scalars(
            select(LineNote).where(LineNote.ro_line_id.in_(ids)).order_by(LineNote.id)
        ):
            notes.setdefault(note.ro_line_id, []).append(note)
        photos = dict(
            session.execute(
                select(LinePhoto.ro_line_id, func.count())
                .where(LinePhoto.ro_line_id.in_(ids))
                .group_by(LinePhoto.ro_line_id)
            ).all()
        )
        page_answers = session.scalars(
            select(PageAnswer).where(PageAnswer.repair_order_id == ro.id).order_by(PageAnswer.id)
        ).all()
        context = {
            "ro": ro,
            "zone": session.get_one(Rooftop, ro.rooftop_id).timezone,
            "links_sent": links[0],
            "links_opened": links[1],
            "links_revoked": links[2],
            "notes": notes,
            "photos": photos,
            "page_answers": page_answers,
            "photo_max_mb": PHOTO_MAX_BYTES // 1024 // 1024,
        }
        return render(request, "customer_page/_staff_panel.html", context, user=user)


@router.post("/repair-orders/{ro_id}/customer-page/revoke", dependencies=[CsrfDep])
def revoke(request: Request, ro_id: RowId, user: WebUserDep, database: DatabaseDep) -> Response:
    """Every link sent for this RO stops opening now; later texts carry new links."""
    with database.transaction() as session:
        ro = visible_repair_order(session, principal=user.principal, ro_id=ro_id)
        if ro is None:
            return not_found(request, user)
        revoke_links(session, repair_order_id=ro.id, by=user.email, now=utcnow())
    return _back(ro_id)


@router.post("/repair-orders/{ro_id}/lines/{line_id}/notes", dependencies=[CsrfDep])
def add_note(
    request: Request,
    ro_id: RowId,
    line_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    note: Annotated[str, Form(max_length=NOTE_MAX_CHARS)] = "",
) -> Response:
    """The technician's finding, in words the customer will read beside the line."""
    # Whose line it is comes first: another store's RO is "not found", whatever the form.
    with database.transaction() as session:
        line = _line(session, user, ro_id, line_id)
        if line is None:
            return not_found(request, user)
        if not note.strip():
            return _result(
                request, user, ro_id, "The note is empty: write what the technician found.", 422
            )
        session.add(
            LineNote(ro_line_id=line.id, note=note.strip(), source="advisor", author=user.email)
        )
    return _back(ro_id)


@router.post("/repair-orders/{ro_id}/lines/{line_id}/photos", dependencies=[CsrfDep])
async def add_photo(
    request: Request,
    ro_id: RowId,
    line_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A photo for the line, checked by its bytes (JPEG, PNG, WebP) and size."""
    with database.transaction() as session:
        # Whose line it is comes first: another store's RO is "not found", whatever the form.
        if _line(session, user, ro_id, line_id) is None:
            return not_found(request, user)
    if photo is None:
        return _result(request, user, ro_id, "Photo not added: choose a photo first.", 422)
    data = await photo.read(PHOTO_MAX_BYTES + 1)
    try:
        content_type, extension = photo_type(data)
    except PhotoRefused as refused:
        return _result(request, user, ro_id, f"Photo not added: {refused}.", 422)
    with database.transaction() as session:
        line = _line(session, user, ro_id, line_id)
        if line is None:
            return not_found(request, user)
        count = session.scalar(select(func.count()).where(LinePhoto.ro_line_id == line.id)) or 0
        if count >= PHOTOS_PER_LINE:
            message = f"Photo not added: a line takes at most {PHOTOS_PER_LINE} photos."
            return _result(request, user, ro_id, message, 422)
        key = new_key(extension)
        try:
            photo_store(settings.media_dir).put(key, data, content_type)
        except PhotoStoreError as failed:
            log.error("photo not stored: %s", failed)
            return _result(request, user, ro_id, "Photo not added: the photo store failed.", 503)
        session.add(
            LinePhoto(
                ro_line_id=line.id,
                storage_key=key,
                content_type=content_type,
                size_bytes=len(data),
                source="advisor",
                author=user.email,
            )
        )
    return _back(ro_id)


REPORT_PERIODS = (7, 30, 90)


@router.get("/reports/customer-page", response_class=HTMLResponse)
def report_section(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    days: int = 30,
) -> Response:
    """The director's page section: what the customer's page did (loaded by the reports page)."""
    require_role(user, "director", "admin")
    with database.reading() as session:
        rooftops = visible_rooftops(session, principal=user.principal)
        if rooftop:
            rooftops = [r for r in rooftops if r.slug == rooftop]
            if not rooftops:
                return not_found(request, user)
        zone = rooftops[0].settings.zone if rooftops else None
        today = utcnow().astimezone(zone).date() if zone else utcnow().date()
        since = today - timedelta(days=(days if days in REPORT_PERIODS else 30) - 1)
        measures = customer_page_measures(session, rooftops=rooftops, since=since)
    return render(request, "customer_page/_report.html", {"m": measures}, user=user)
