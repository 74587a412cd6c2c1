"""The FastAPI application factory: pages, JSON API and Twilio webhooks."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from app.auth.views import router as auth_router
from app.config import Settings
from app.conversations.views import router as conversations_router
from app.customers.views import router as customers_router
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.messaging.views import router as messaging_router
from app.ops.metrics_views import instrument_app
from app.ops.views import router as ops_router
from app.repair_orders.views import router as repair_orders_router
from app.reports.views import router as reports_router
from app.web.errors import install_error_pages
from app.web.views import router as web_router

# Each domain contributes one router. Order matters only for overlapping paths (none).
ROUTERS: tuple[APIRouter, ...] = (
    ops_router,
    messaging_router,
    conversations_router,
    repair_orders_router,
    customers_router,
    reports_router,
    auth_router,
    web_router,
)


async def _unstorable_input(request: Request, exc: Exception) -> JSONResponse:
    """Input the database refuses (a NUL byte, a number out of range) is the client's error.

    The unit of work has already rolled back: nothing was written.
    """
    return JSONResponse(
        {"detail": "the request holds a value the database cannot store (e.g. a NUL character)"},
        status_code=422,
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
    app.add_exception_handler(DataError, _unstorable_input)
    for router in ROUTERS:
        app.include_router(router)
    return app
