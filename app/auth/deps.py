"""`ApiPrincipalDep`: every /api/v1 route depends on it; 401 without a valid bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.service import Principal, principal_for_token
from app.deps import DatabaseDep

_bearer = HTTPBearer(auto_error=False, description="API token from `pitwall tokens create`")


def api_principal(
    request: Request,
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the bearer token; a browser session (set by the web app) also counts."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        with database.transaction() as session:
            principal = principal_for_token(session, credentials.credentials)
        if principal is not None:
            return principal
    session_principal = getattr(request.state, "principal", None)
    if isinstance(session_principal, Principal):
        return session_principal
    raise HTTPException(
        status_code=401,
        detail="a valid API token is required (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


ApiPrincipalDep = Annotated[Principal, Depends(api_principal)]
