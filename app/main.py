"""The FastAPI application factory: pages, JSON API and Twilio webhooks."""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI

from app.config import Settings
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.ops.metrics_views import instrument_app
from app.web.errors import install_error_pages

log = logging.getLogger(__name__)

# Each domain contributes one `router` from its views module. Order matters only
# for overlapping paths (none today).
ROUTER_MODULES = (
    "app.ops.views",
    "app.messaging.views",
    "app.conversations.views",
    "app.repair_orders.views",
    "app.reports.views",
    "app.auth.views",
    "app.web.views",
)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app for these settings; tests hand in their own database."""
    settings = settings or Settings()
    if database is None:
        engine = make_engine(settings.database_url)
        database = Database(engine=engine, sessions=make_session_factory(engine))
    app = FastAPI(
        title="Pitwall",
        version="0.1.0",
        description="Service-status messaging for dealership service departments.",
    )
    app.state.settings = settings
    app.state.database = database
    instrument_app(app)
    install_error_pages(app)
    for module_name in ROUTER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a domain without HTTP routes yet
        app.include_router(module.router)
    return app
