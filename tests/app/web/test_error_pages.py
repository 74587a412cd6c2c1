"""Browsers get HTML error pages; the JSON API and webhooks keep their JSON and plain answers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.conversations.models import InboundMessage, Task
from app.customers.models import Customer
from app.deps import Database
from app.main import create_app
from app.web.inbox_queries import InboxItem
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.support import ServedApp

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_unknown_page_is_an_html_404_for_browsers_and_json_for_the_api(
    world: World, client: httpx.Client
) -> None:
    page = client.get("/no-such-page", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text and 'href="/login"' in page.text
    api = client.get("/api/v1/no-such-thing", headers=HTML)
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    hook = client.get("/webhooks/twilio/nothing", headers=HTML)
    assert hook.status_code == 404 and "<h1>" not in hook.text
    plain = client.get("/no-such-page")  # a script, not a browser
    assert plain.status_code == 404 and plain.json() == {"detail": "Not Found"}


def test_logged_in_404s_and_403s_keep_the_header_and_a_way_back(
    world: World, served: ServedApp
) -> None:
    with logged_in(served, "director@bayview.example") as client:
        for path in ("/reports/no-such-report.csv", "/reports/passwd.csv?days=30", "/nope"):
            page = client.get(path, headers=HTML)
            assert page.status_code == 404, path
            assert "<h1>Not found</h1>" in page.text, path
            assert "director@bayview.example" in page.text and 'href="/board"' in page.text
        forged = client.post(
            f"/inbox/tasks/{world.task['bayview-toyota']}/done",
            data={"csrf_token": "forged"},
            headers=HTML,
        )
        assert forged.status_code == 403 and "<h1>Not allowed</h1>" in forged.text
        assert "This form expired or did not come from Pitwall" in forged.text
        wrong_method = client.get("/logout", headers=HTML)
        assert wrong_method.status_code == 405 and "<h1>Not found</h1>" in wrong_method.text
    with logged_in(served, "toyota.advisor@bayview.example") as advisor:
        admin = advisor.get("/admin", headers=HTML)  # a role's 404 is a page too
        assert admin.status_code == 404 and "<h1>Not found</h1>" in admin.text
        assert "Log out" in admin.text


@pytest.fixture
def failing(settings: Settings, database: Database) -> Iterator[str]:
    app = create_app(settings, database=database)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    app.add_api_route("/api/v1/boom", boom)
    with ServedApp(app) as served:
        yield served.url


def test_a_crash_is_an_html_500_for_browsers_and_plain_for_the_api(failing: str) -> None:
    # uvicorn closes the connection after an exception, even once the page is sent.
    with httpx.Client(base_url=failing, headers={"Connection": "close"}) as client:
        page = client.get("/boom", headers=HTML)
        assert page.status_code == 500 and "<h1>Something went wrong</h1>" in page.text
        assert "a bug" not in page.text  # no internals shown
        api = client.get("/api/v1/boom", headers=HTML)
        assert api.status_code == 500 and api.text == "Internal Server Error"


def test_the_login_redirect_and_htmx_401_pass_through(world: World, client: httpx.Client) -> None:
    page = client.get("/board", headers=HTML)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    poll = client.get("/board/rows?rooftop=x", headers={**HTML, "HX-Request": "true"})
    assert poll.status_code == 401 and poll.headers["HX-Redirect"] == "/login"
    assert csrf_of(client.get("/login").text)


def _item(summary: str, body: str | None, customer: Customer | None) -> InboxItem:
    message = InboundMessage(body=body) if body is not None else None
    return InboxItem(
        task=Task(summary=summary),
        rooftop=None,  # type: ignore[arg-type]
        customer=customer,
        ro_number=None,
        message=message,
        taken_by=None,
    )


def test_inbox_says_the_customers_words_once() -> None:
    sam = Customer(first_name="Sam", last_name="Lee")
    assert _item("Sam Lee: Is it ready?", "Is it ready?", sam).note is None
    assert _item("Sam Lee: Also a wash?", "Is it ready?", sam).note == "Latest: Also a wash?"
    unknown = _item("New contact +14155550142: hi", "hi", None)
    assert unknown.note == "New contact +14155550142"
    callback = _item("Call back Sam Lee at +14155550142 (missed Mon 09:05)", None, sam)
    assert callback.note == "Call back Sam Lee at +14155550142 (missed Mon 09:05)"


def test_inbox_page_shows_the_message_once(world: World, served: ServedApp) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
    assert inbox.count("When is my car ready? (bayview-toyota)") == 1
