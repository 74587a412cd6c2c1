"""The FastAPI application factory: pages, JSON API and Twilio webhooks."""

from __future__ import annotations

import json

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from app.auth.views import router as auth_router
from app.config import Settings
from app.conversations.views import router as conversations_router
from app.customer_page.api import router as customer_page_api_router
from app.customer_page.links import use_public_url
from app.customer_page.staff_views import router as customer_page_staff_router
from app.customer_page.views import router as customer_page_router
from app.customers.views import router as customers_router
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.guards import install_guards
from app.messaging.views import router as messaging_router
from app.ops.metrics_views import instrument_app
from app.ops.views import router as ops_router
from app.repair_orders.views import router as repair_orders_router
from app.reports.views import router as reports_router
from app.web.errors import install_error_pages
from app.web.favicon import router as favicon_router
from app.web.views import router as web_router

# Each domain contributes one router. Order matters only for overlapping paths (none),
# and for the time spent matching: a request is matched against the routes in order, so
# the webhooks Twilio calls most (inbound texts, then status callbacks) come first.
ROUTERS: tuple[APIRouter, ...] = (
    conversations_router,
    messaging_router,
    ops_router,
    repair_orders_router,
    customers_router,
    reports_router,
    customer_page_router,
    customer_page_api_router,
    customer_page_staff_router,
    auth_router,
    web_router,
    favicon_router,
)


# A 422 says what is wrong with each field and shows at most this much of what was sent.
ECHOED_INPUT_CHARS = 100


async def _unstorable_input(request: Request, exc: Exception) -> JSONResponse:
    """Input the database refuses (a NUL byte, a number out of range) is the client's error.

    SQLite refuses an integer beyond 64 bits with OverflowError, PostgreSQL with DataError.
    The unit of work has already rolled back: nothing was written.
    """
    return JSONResponse(
        {
            "detail": "the request holds a value the database cannot store "
            "(e.g. a NUL character, a number too large)"
        },
        status_code=422,
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, except that a long input is cut instead of echoed back whole."""
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors())
    for error in errors:
        if "input" in error:
            error["input"] = _shortened(error["input"])
    return JSONResponse({"detail": errors}, status_code=422)


def _shortened(value: object) -> object:
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) <= ECHOED_INPUT_CHARS:
        return value
    return f"{text[:ECHOED_INPUT_CHARS]}... ({len(text):,} characters)"


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
    use_public_url(settings.public_url)  # the customer page's links in texts rendered here
    app.state.database = database
    instrument_app(app)
    install_guards(app, settings)
    install_error_pages(app)
    app.add_exception_handler(DataError, _unstorable_input)
    app.add_exception_handler(OverflowError, _unstorable_input)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for router in ROUTERS:
        app.include_router(router)
    return app
