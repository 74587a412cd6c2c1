"""schemathesis against /openapi.json over real HTTP: no input makes the API answer 5xx.

Needs schemathesis (not yet in the test extra): skipped when it is not installed.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from app.deps import Database
from tests.app.web.conftest import World
from tests.support import ServedApp

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES_PER_OPERATION = 12


def test_no_generated_request_gets_a_5xx(
    world: World, served: ServedApp, database: Database
) -> None:
    spec = httpx.get(served.url + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    auth = {"Authorization": f"Bearer {world.admin_token}"}
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            for headers in (auth, {}):
                response = case.call(base_url=served.url, headers=headers)
                calls += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query} -> "
                        f"{response.status_code}: {response.text[:200]}"
                    )

        run()
    print(f"\nschemathesis: {calls} requests, {len(failures)} 5xx")
    assert calls > 50
    assert failures == [], "\n".join(failures)
