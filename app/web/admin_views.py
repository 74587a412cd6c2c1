"""Admin pages, one router: the home (app.web.admin.overview), accounts, rooftop settings,
message templates. The routes live in app/web/admin/, split by what they edit."""

from __future__ import annotations

from fastapi import APIRouter

from app.web.admin import accounts, message_templates, overview, rooftop_settings
from app.web.admin.common import shown_settings

router = APIRouter(include_in_schema=False)
for part in (overview, accounts, rooftop_settings, message_templates):
    router.include_router(part.router)

__all__ = ["router", "shown_settings"]
