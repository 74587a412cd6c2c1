"""`/favicon.ico`: browsers ask for it on every first page; answer with Pitwall's flag."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

FAVICON = Path(__file__).resolve().parents[1] / "static" / "favicon.ico"

router = APIRouter()


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """A 32 px checkered flag (no login: the browser fetches it before anyone signs in)."""
    return FileResponse(
        FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )
