"""Pages for advisors: the routers of each page, and the static files they load.

The board and search (board_views), one RO and one customer with the message box
(record_views), the inbox (inbox_views), reports and admin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.auth.deps import WebUserDep
from app.web.admin_views import router as admin_router
from app.web.board_views import router as board_router
from app.web.inbox_views import router as inbox_router
from app.web.record_views import router as record_router
from app.web.reports_views import router as reports_router

router = APIRouter(include_in_schema=False)
router.include_router(board_router)
router.include_router(record_router)
router.include_router(inbox_router)
router.include_router(reports_router)
router.include_router(admin_router)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# Served by name from a fixed list: no path from the URL ever reaches the file system.
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "pitwall.css": "text/css",
    "pitwall.js": "text/javascript",
    "workspace.js": "text/javascript",
}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The vendored htmx and the stylesheet (no CDN: the demo works offline)."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return FileResponse(
        STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/")
def home(user: WebUserDep) -> RedirectResponse:
    return RedirectResponse("/board", status_code=303)
