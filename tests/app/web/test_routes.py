"""Every route of the app, walked without credentials: nothing answers to a stranger."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import iter_route_contexts

from app.config import Settings
from app.deps import Database
from app.main import create_app
from tests.support import ServedApp

# Public on purpose: health probes, Prometheus metrics (counts only, no customer data),
# the login form, static files, the API description.
PUBLIC = re.compile(
    r"^(/healthz|/readyz|/metrics|/login|/favicon\.ico|/static/.*|/openapi\.json|/docs.*|/redoc)$"
)
WEBHOOKS = re.compile(r"^/webhooks/twilio/")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_refuses_strangers(settings: Settings, database: Database) -> None:
    app = create_app(settings, database=database)
    checked: list[str] = []
    with (
        ServedApp(app) as served,
        httpx.Client(base_url=served.url, follow_redirects=False) as client,
    ):
        for route in iter_route_contexts(app.routes):
            path = route.path
            assert path is not None
            for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
                if PUBLIC.match(path) and not (path == "/login" and method == "POST"):
                    continue
                response = client.request(method, _concrete(path))
                where = f"{method} {path}"
                if path.startswith("/api/v1/"):
                    assert response.status_code == 401, where
                elif WEBHOOKS.match(path):
                    assert response.status_code == 403, where
                elif path.startswith("/c/"):
                    # The customer's page: its link is the credential; a made-up one gets
                    # the plain "this link no longer works" page.
                    assert response.status_code == 404, where
                elif path == "/login":
                    assert response.status_code == 403, where  # no CSRF token, no login
                else:
                    assert response.status_code == 303, where
                    assert response.headers["location"].startswith("/login"), where
                checked.append(where)
    assert "GET /board" in checked and "POST /inbox/tasks/{task_id}/reply" in checked
