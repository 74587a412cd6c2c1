"""The board, search across the group, and the small JSON the pages poll for live counts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.auth.deps import WebUserDep
from app.auth.models import User
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep
from app.repair_orders.models import OPEN_STAGES
from app.web import queries
from app.web.board import ATTENTION, BoardFilters, board
from app.web.inbox_queries import open_card_count
from app.web.search import SearchError, search
from app.web.templating import not_found, render

router = APIRouter(include_in_schema=False)
BOARD_POLL_SECONDS = 3
# How often a page asks /live.json for the Inbox count and the board's attention counts.
LIVE_POLL_SECONDS = 5


def pick_rooftop(rooftops: list[Rooftop], slug: str | None) -> Rooftop | None:
    if not slug:
        return rooftops[0] if rooftops else None
    return next((r for r in rooftops if r.slug == slug), None)


def _filters(request: Request) -> BoardFilters:
    params = request.query_params
    try:
        return BoardFilters.parse(
            mine=params.get("mine", ""),
            stage=params.get("stage", ""),
            late=params.get("late", ""),
            closed=params.get("closed", ""),
        )
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


@router.get("/board", response_class=HTMLResponse)
def board_page(
    request: Request, user: WebUserDep, database: DatabaseDep, rooftop: str | None = None
) -> Response:
    """A rooftop's open repair orders, the ones needing a person first; refreshes itself."""
    filters = _filters(request)
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        current = pick_rooftop(rooftops, rooftop)
        if current is None and rooftop:
            return not_found(request, user)
        me = session.get(User, user.user_id)
        now = utcnow()
        shown = (
            board(session, rooftop=current, now=now, filters=filters, me=me) if current else None
        )
        context = {
            "title": f"Board · {current.name}" if current else "Board",
            "nav": "board",
            "rooftops": rooftops,
            "rooftop": current,
            "board": shown,
            "rows": shown.rows if shown else [],
            "filters": filters,
            "stages": OPEN_STAGES,
            "attention": ATTENTION,
            "now": now,
            "poll_seconds": BOARD_POLL_SECONDS,
        }
        return render(request, "web/board.html", context, user=user)


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, user: WebUserDep, database: DatabaseDep, rooftop: str) -> Response:
    """The board's table body alone, for htmx polling (with the page's filters)."""
    filters = _filters(request)
    with database.transaction() as session:
        current = pick_rooftop(queries.visible_rooftops(session, principal=user.principal), rooftop)
        if current is None:
            return not_found(request, user)
        now = utcnow()
        me = session.get(User, user.user_id)
        shown = board(session, rooftop=current, now=now, filters=filters, me=me)
        context = {"rooftop": current, "rows": shown.rows, "now": now, "filters": filters}
        return render(request, "web/_board_rows.html", context, user=user)


@router.get("/live.json")
def live(user: WebUserDep, database: DatabaseDep, rooftop: str | None = None) -> JSONResponse:
    """What the nav and the board show as counts: open inbox cards; ROs needing attention."""
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        body: dict[str, object] = {
            "inbox": open_card_count(session, rooftop_ids=[r.id for r in rooftops])
        }
        current = pick_rooftop(rooftops, rooftop) if rooftop else None
        if current is not None:
            body["attention"] = board(session, rooftop=current, now=utcnow()).counts
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, user: WebUserDep, database: DatabaseDep, q: str = "") -> Response:
    """Repair orders and customers by name, phone, RO number or VIN, at the user's rooftops."""
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        results, error = None, None
        if q.strip():
            try:
                results = search(session, principal=user.principal, rooftops=rooftops, query=q)
            except SearchError as exc:
                error = str(exc)
        context = {
            "title": f"Search · {q}" if q else "Search",
            "nav": "board",
            "q": q,
            "results": results,
            "error": error,
        }
        return render(
            request, "web/search.html", context, user=user, status_code=422 if error else 200
        )
