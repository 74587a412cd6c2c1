"""Health endpoints for load balancers and orchestrators, and /metrics for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.db import ping
from app.deps import DatabaseDep
from app.ops.metrics_views import router as metrics_router

router = APIRouter(tags=["health"])
router.include_router(metrics_router)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """200 while the process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(database: DatabaseDep) -> JSONResponse:
    """200 when the database answers, 503 when it does not."""
    try:
        ping(database.engine)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
