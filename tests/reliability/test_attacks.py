"""Bad input and attacks over real HTTP: forged webhooks, script in every field, CSRF,
strangers and other tenants. Each rejected request must write nothing: every table is
fingerprinted before and after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Engine, select

from app.auth.deps import require_csrf
from app.auth.models import ApiToken, User, WebSessionRecord
from app.auth.service import create_api_token
from app.config import Settings
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.main import create_app
from app.repair_orders.models import RoLine
from app.repair_orders.poller import poll_rooftop
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.app.repair_orders.conftest import NOW, ScriptedDms, bridge_record
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.reliability.conftest import table_fingerprint
from tests.support import ServedApp

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
WEBHOOKS = (
    "/webhooks/twilio/messages",
    "/webhooks/twilio/voice",
    "/webhooks/twilio/voice/dial-status",
    "/webhooks/twilio/status",
)
FIGURES: dict[str, int] = {}


def api_routes(app: Any) -> list[tuple[str, set[str], APIRoute]]:
    """(full path, methods, route) of every APIRoute, however routers were included."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path:
            found.append((context.path, set(context.methods or ()) - {"HEAD"}, route))
    return found


def _calls(dependant: Any) -> set[Any]:
    calls = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _calls(sub)
    return calls


def _count(name: str, n: int = 1) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + n


@pytest.fixture
def app_served(settings: Settings, database: Database) -> Iterator[ServedApp]:
    with ServedApp(create_app(settings, database=database)) as served:
        yield served


def _form(path: str) -> dict[str, str]:
    if path.endswith("/status"):
        return {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "To": "+14155550142"}
    if "voice" in path:
        return {
            "CallSid": "CA" + "b" * 32,
            "From": "+14155550142",
            "To": "+14155550100",
            "CallStatus": "ringing",
            "DialCallStatus": "no-answer",
        }
    return {
        "MessageSid": "SM" + "c" * 32,
        "From": "+14155550142",
        "To": "+14155550100",
        "Body": "STOP",
        "NumMedia": "0",
    }


def test_forged_webhooks_are_403_and_write_nothing(
    world: World, settings: Settings, database: Database, app_served: ServedApp, engine: Engine
) -> None:
    token = settings.twilio_auth_token
    public = settings.public_url
    before = table_fingerprint(engine)
    attempts = 0
    with httpx.Client(base_url=app_served.url) as client:
        for path in WEBHOOKS:
            form = _form(path)
            other_path = next(p for p in WEBHOOKS if p != path)
            forgeries = {
                "no signature": None,
                "empty signature": "",
                "wrong signature": "bm90IGEgc2lnbmF0dXJl",
                "replayed from another path": compute_signature(token, public + other_path, form),
                "signed for another public URL": compute_signature(
                    token, "https://evil.example" + path, form
                ),
                "signed with another token": compute_signature("x" * 32, public + path, form),
                "params changed after signing": compute_signature(
                    token, public + path, {**form, "Body": "hello"}
                ),
                "query added after signing": compute_signature(token, public + path, form),
            }
            for name, signature in forgeries.items():
                headers = {} if signature is None else {SIGNATURE_HEADER: signature}
                url = path + ("?step=menu" if name == "query added after signing" else "")
                response = client.post(url, data=form, headers=headers)
                assert response.status_code == 403, f"{name} -> {path}: {response.status_code}"
                attempts += 1
            # The same, as JSON and with a huge body: still refused before anything is read.
            response = client.post(path, json=form)
            assert response.status_code == 403, path
            response = client.post(
                path, data={**form, "Body": "x" * 200_000}, headers={SIGNATURE_HEADER: "x"}
            )
            assert response.status_code in (403, 413), path
            attempts += 2
        assert table_fingerprint(engine) == before
        # Control: the same form, correctly signed, is accepted and does write.
        form = _form(WEBHOOKS[0])
        signed = compute_signature(token, public + WEBHOOKS[0], form)
        response = client.post(WEBHOOKS[0], data=form, headers={SIGNATURE_HEADER: signed})
        assert response.status_code == 200
    assert table_fingerprint(engine) != before
    _count("forged webhooks", attempts)


def _hostile_world(database: Database) -> dict[str, int]:
    """Script and template syntax in every DMS field, stored through the real poller."""
    from app.wiring import change_hooks

    record = bridge_record(
        "R<i>9</i>",
        advisor={"id": "A<7>", "name": f"Dana {SCRIPT}"},
        customer={
            "id": "C-evil",
            "first_name": SCRIPT,
            "last_name": "{{ 7*7 }}\"'><img src=x onerror=alert(2)>",
            "phones": [{"number": "(415) 555-0142", "kind": "mobile"}],
            "email": "a@b.example",
            "language": "en",
            "sms_consent": True,
            "marketing_consent": False,
        },
        vehicle={"vin": None, "year": 2021, "make": SCRIPT, "model": "]]><x>", "mileage": 1},
        status="WAITAPPR",
        lines=[
            {
                "line": "A",
                "op_code": '=HYPERLINK("http://evil")',
                "description": f"{SCRIPT} & ]]> {{{{ config }}}}",
                "status": "pending",
                "amount": "412.00",
            }
        ],
    )
    with database.transaction() as session:
        toyota = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")).one()
    result = poll_rooftop(
        database,
        rooftop_id=toyota.id,
        adapter_factory=lambda _r: ScriptedDms(pages=[[record]]),
        hooks=change_hooks(),
        clock=lambda: NOW,
        worker_id="w",
    )
    assert result.outcome == "ok" and result.counts["changed"] == 1, result
    from app.customers.models import Customer
    from app.repair_orders.models import RepairOrder

    with database.transaction() as session:
        ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == "R<i>9</i>")).one()
        customer = session.get(Customer, ro.customer_id)
        assert customer is not None and customer.first_name == SCRIPT
        return {"ro": ro.id, "customer": customer.id}


def test_script_in_dms_fields_and_texts_is_text_on_every_page(
    world: World, settings: Settings, database: Database, app_served: ServedApp
) -> None:
    hostile = _hostile_world(database)
    # The customer writes script too, through the signed webhook; the TwiML stays one element.
    form = {
        "MessageSid": "SM" + "d" * 32,
        "From": "+14155550142",
        "To": "+14155550100",
        "Body": f"{SCRIPT} ]]> </Message><Redirect>http://evil</Redirect>",
        "NumMedia": "0",
    }
    signature = compute_signature(
        settings.twilio_auth_token, settings.public_url + "/webhooks/twilio/messages", form
    )
    with httpx.Client(base_url=app_served.url) as client:
        answer = client.post(
            "/webhooks/twilio/messages", data=form, headers={SIGNATURE_HEADER: signature}
        )
    assert answer.status_code == 200
    assert "<Redirect>" not in answer.text and "<script>" not in answer.text
    from xml.etree import ElementTree

    root = ElementTree.fromstring(answer.text)
    assert root.tag == "Response" and [c.tag for c in root] in ([], ["Message"])

    from app.messaging.models import OutboundMessage

    with database.transaction() as session:
        bodies = session.scalars(select(OutboundMessage.body)).all()
    # SMS is plain text: the name is sent as written, and template syntax in data is not run.
    assert any(b and SCRIPT in b for b in bodies)
    assert not any(b and "49" in b for b in bodies)

    pages = [
        "/board",
        "/board/rows?rooftop=bayview-toyota",
        "/board?rooftop=bayview-toyota",
        f"/repair-orders/{hostile['ro']}",
        f"/customers/{hostile['customer']}",
        "/inbox",
        "/inbox/items",
        "/reports",
        "/admin",
        "/admin/templates",
    ]
    seen_escaped = 0
    with logged_in(app_served, "admin@bayview.example") as client:
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, page
            assert SCRIPT not in response.text, page
            assert "<img src=x" not in response.text, page
            seen_escaped += ESCAPED in response.text
            _count("pages rendered with script")
        for csv_page in re.findall(
            r'href="(/reports/[^"]+\.csv[^"]*)"', client.get("/reports").text
        ):
            response = client.get(csv_page.replace("&amp;", "&"))
            assert response.status_code == 200
            assert "\n=HYPERLINK" not in response.text and ",=HYPERLINK" not in response.text
        api = client.get(f"/api/v1/repair-orders/{hostile['ro']}")
        assert api.headers["content-type"].startswith("application/json")
    assert seen_escaped >= 3  # the RO, the customer and the board show the name, escaped


def _forms(html: str) -> list[str]:
    return re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)


def test_every_form_and_unsafe_route_needs_the_csrf_token(
    world: World, app_served: ServedApp, engine: Engine
) -> None:
    # Static walk: every unsafe page route depends on require_csrf (API routes check the
    # header in api_principal; webhooks are signed; /login checks its own token).
    app = create_app(Settings(PITWALL_DATABASE_URL="sqlite://", PITWALL_SECRET_KEY="k"))
    unguarded = []
    checked = 0
    for path, methods, route in api_routes(app):
        if not (methods - {"GET"}):
            continue
        if path.startswith(("/api/", "/webhooks/")) or path == "/login":
            continue
        if path.startswith("/c/"):
            # The customer's page has no session: its forms carry a token derived from the
            # link (tests/app/customer_page/test_abuse.py refuses a POST without it).
            continue
        checked += 1
        if require_csrf not in _calls(route.dependant):
            unguarded.append(path)
    assert checked >= 6 and unguarded == []

    with logged_in(app_served, "director@bayview.example") as other:
        foreign = csrf_of(other.get("/board").text)
    with logged_in(app_served, "admin@bayview.example") as client:
        actions: set[str] = set()
        for page in ("/board", "/inbox", "/admin", f"/repair-orders/{world.ro['bayview-toyota']}"):
            actions.update(_forms(client.get(page).text))
        assert {"/admin/users", "/admin/tokens", "/logout"} <= actions
        assert any(a.endswith("/reply") for a in actions)
        before = table_fingerprint(engine)
        data = {
            "body": "hi",
            "email": "evil@x.example",
            "password": "p" * 20,
            "role": "admin",
            "name": "evil",
        }
        for action in sorted(actions):
            for name, token in (("none", None), ("wrong", "forged-token"), ("empty", "")):
                fields = dict(data) if token is None else {**data, "csrf_token": token}
                response = client.post(action, data=fields)
                assert response.status_code == 403, f"{action} with {name} token"
                response = client.post(action, data=data, headers={"X-CSRF-Token": token or "x"})
                assert response.status_code == 403, f"{action} with {name} header"
                _count("csrf forgeries", 2)
        # A token from another session does not work either.
        for action in sorted(actions):
            assert client.post(action, data={**data, "csrf_token": foreign}).status_code == 403
            _count("csrf forgeries")
        assert table_fingerprint(engine) == before
        assert client.get("/board").status_code == 200  # still logged in: logout was refused


_PARAMS = re.compile(r"\{([^}]+)\}")


def test_tenant_and_rooftop_matrix_over_every_route(
    world: World, database: Database, app_served: ServedApp, engine: Engine
) -> None:
    """Every route with an id or slug, asked for another group's (and another rooftop's) data."""
    with database.transaction() as session:
        harbor_group = session.get(Rooftop, world.harbor_id).group_id  # type: ignore[union-attr]
        bayview_group = session.get(Rooftop, world.toyota_id).group_id  # type: ignore[union-attr]
        bayview_admin = create_api_token(session, group_id=bayview_group, name="x", role="admin")
        ford = session.get(Rooftop, world.ford_id)
        toyota_advisor = create_api_token(
            session,
            group_id=bayview_group,
            name="adv",
            role="advisor",
            rooftops=[session.get(Rooftop, world.toyota_id)],  # type: ignore[list-item]
        )
        assert ford is not None
        create_api_token(session, group_id=harbor_group, name="harbor", role="admin")
        harbor_token_id = session.scalars(
            select(ApiToken.id).where(ApiToken.group_id == harbor_group)
        ).one()
        harbor_user_id = session.scalars(
            select(User.id).where(User.email == "director@harbor.example")
        ).one()
        harbor_line_id = session.scalars(
            select(RoLine.id).where(RoLine.repair_order_id == world.ro["harbor-honda"])
        ).first()
    with logged_in(app_served, "director@harbor.example"):
        pass
    with database.transaction() as session:
        harbor_session_id = session.scalars(
            select(WebSessionRecord.id).where(WebSessionRecord.user_id == harbor_user_id)
        ).first()
    foreign = {  # what belongs to Harbor Motors
        "ro_id": world.ro["harbor-honda"],
        "customer_id": world.customer["harbor-honda"],
        "task_id": world.task["harbor-honda"],
        "slug": "harbor-honda",
        "token_id": harbor_token_id,
        "user_id": harbor_user_id,
        "session_id": harbor_session_id,
        "line_id": harbor_line_id or 1,
    }
    other_rooftop = {  # Bayview Ford, for a Toyota advisor
        "ro_id": world.ro["bayview-ford"],
        "customer_id": world.customer["bayview-ford"],
        "task_id": world.task["bayview-ford"],
        "slug": "bayview-ford",
    }
    app = app_served._server.config.app  # type: ignore[attr-defined]
    routes = [
        (path, methods)
        for path, methods, _ in api_routes(app)
        if _PARAMS.search(path)
        and path not in ("/static/{name}", "/static/customer-page/{name}", "/reports/{name}.csv")
        # The customer's page has no session to cross tenants with: its link is the key
        # (tests/app/customer_page/test_abuse.py: another customer's ids show nothing).
        and not path.startswith("/c/")
    ]
    assert len(routes) >= 10
    before = table_fingerprint(engine)
    tried = 0
    with logged_in(app_served, "admin@bayview.example") as browser:
        csrf = csrf_of(browser.get("/board").text)
        for path, methods in routes:
            for method in sorted(methods):
                url = _PARAMS.sub(lambda m: str(foreign[m.group(1)]), path)
                if path.startswith("/api/"):
                    response = httpx.request(
                        method,
                        app_served.url + url,
                        headers={"Authorization": f"Bearer {bayview_admin}"},
                        json={"body": "hi"},
                    )
                else:
                    response = browser.request(
                        method,
                        url,
                        data={"csrf_token": csrf, "body": "hi", "request_id": "req-12345678"},
                    )
                assert response.status_code == 404, f"{method} {url}: {response.status_code}"
                tried += 1
    # An advisor of one rooftop, asking for the other rooftop of the same group.
    for path, methods in routes:
        if not path.startswith("/api/"):
            continue
        for method in sorted(methods):
            url = _PARAMS.sub(lambda m: str(other_rooftop[m.group(1)]), path)
            response = httpx.request(
                method,
                app_server_url(app_served) + url,
                headers={"Authorization": f"Bearer {toyota_advisor}"},
                json={"body": "hi"},
            )
            assert response.status_code in (403, 404), f"advisor {method} {url}"
            tried += 1
    for query in (
        "/api/v1/inbox?rooftop=harbor-honda",
        "/api/v1/repair-orders?rooftop=harbor-honda",
        "/api/v1/reports/declined-recovery?rooftop=harbor-honda",
        "/api/v1/reports/conversations?rooftop=harbor-honda&since=2026-01-01",
    ):
        response = httpx.get(
            app_served.url + query, headers={"Authorization": f"Bearer {bayview_admin}"}
        )
        assert response.status_code == 404, query
        tried += 1
    assert table_fingerprint(engine, "task", "outbound_message", "api_token", "app_user") == {
        k: v
        for k, v in before.items()
        if k in ("task", "outbound_message", "api_token", "app_user")
    }
    _count("cross-tenant requests", tried)
    assert utcnow()  # keep the import honest


def app_server_url(served: ServedApp) -> str:
    return served.url


def test_ids_out_of_the_columns_range_are_4xx_not_500(
    world: World, app_served: ServedApp, engine: Engine
) -> None:
    """Found by schemathesis: /api/v1/repair-orders/2147483648 was a 500 (PostgreSQL int4)."""
    app = app_served._server.config.app  # type: ignore[attr-defined]
    routes = [(p, m) for p, m, _ in api_routes(app) if re.search(r"\{\w+_id\}", p)]
    assert len(routes) >= 10
    tried = 0
    with logged_in(app_served, "admin@bayview.example") as browser:
        csrf = csrf_of(browser.get("/board").text)
        before = table_fingerprint(engine)
        for path, methods in routes:
            for value in (2**31, 2**63, 2**70, -(2**63) - 1, 0, -1):
                url = _PARAMS.sub(str(value), path)
                for method in sorted(methods):
                    if path.startswith("/api/"):
                        response = httpx.request(
                            method,
                            app_served.url + url,
                            headers={"Authorization": f"Bearer {world.admin_token}"},
                            json={"body": "hi"},
                        )
                    else:
                        response = browser.request(
                            method,
                            url,
                            data={"csrf_token": csrf, "body": "hi", "request_id": "req-12345678"},
                        )
                    assert 400 <= response.status_code < 500, f"{method} {url}"
                    tried += 1
        assert table_fingerprint(engine) == before
    _count("out-of-range ids", tried)
