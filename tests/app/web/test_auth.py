"""Logging in and out: passwords, the session cookie, CSRF, fixation, rate limits."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import time_machine

from app.auth.models import User
from app.auth.passwords import hash_password, verify_password
from app.auth.service import UserError, create_user
from app.auth.sessions import COOKIE_NAME, IDLE_TIMEOUT
from app.db import utcnow
from app.dealers.service import single_group
from app.deps import Database
from tests.app.web.conftest import PASSWORD, World, csrf_of, log_in
from tests.support import ServedApp


def test_passwords_are_argon2_hashed_and_checked() -> None:
    stored = hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough password")
    assert not verify_password(stored, "a long enough passworD")
    assert not verify_password(None, "anything at all")


def test_create_user_refuses_bad_input(world: World, database: Database) -> None:
    with database.transaction() as session:
        group = single_group(session, "Bayview Auto Group")
        cases = [
            ({"email": "not-an-email", "role": "director"}, "not an email"),
            ({"email": "x@bayview.example", "role": "owner"}, "role must be one of"),
            (
                {"email": "x@bayview.example", "role": "director", "password": "short"},
                "at least 10",
            ),
            ({"email": "x@bayview.example", "role": "advisor"}, "at least one rooftop"),
            ({"email": "ADMIN@bayview.example", "role": "admin"}, "already exists"),
        ]
        for overrides, message in cases:
            args = {"password": PASSWORD, "rooftops": [], **overrides}
            with pytest.raises(UserError, match=message):
                create_user(session, group_id=group.id, **args)  # type: ignore[arg-type]
        user = create_user(
            session,
            group_id=group.id,
            email=" New@Bayview.Example ",
            password=PASSWORD,
            role="director",
            rooftops=[],
        )
        assert user.email == "new@bayview.example"
        assert user.password_hash != PASSWORD


def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(
    world: World, client: httpx.Client
) -> None:
    response = log_in(client, "director@bayview.example")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/board").status_code == 200

    board = client.get("/board").text
    assert client.post("/logout", data={"csrf_token": csrf_of(board)}).status_code == 303
    assert client.get("/board").status_code == 303


def test_cookie_is_secure_behind_https(world: World, settings, database: Database) -> None:  # type: ignore[no-untyped-def]
    from app.main import create_app

    https = settings.model_copy(update={"public_url": "https://pitwall.example"})
    with (
        ServedApp(create_app(https, database=database)) as served,
        httpx.Client(base_url=served.url) as client,
    ):
        assert "secure" in client.get("/login").headers["set-cookie"].lower()


def test_wrong_password_and_unknown_email_look_the_same(world: World, client: httpx.Client) -> None:
    wrong = log_in(client, "director@bayview.example", "not the password")
    unknown = log_in(client, "nobody@bayview.example", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match a login" in wrong.text and "do not match a login" in unknown.text


def test_inactive_user_cannot_log_in_and_loses_their_session(
    world: World, served: ServedApp, database: Database
) -> None:
    with httpx.Client(base_url=served.url) as client:
        assert log_in(client, "ford.advisor@bayview.example").status_code == 303
        with database.transaction() as session:
            user = session.query(User).filter_by(email="ford.advisor@bayview.example").one()
            user.active = False
        assert client.get("/board").status_code == 303
        assert log_in(client, "ford.advisor@bayview.example").status_code == 401


def test_post_without_csrf_is_refused(world: World, client: httpx.Client) -> None:
    log_in(client, "toyota.advisor@bayview.example")
    task = world.task["bayview-toyota"]
    for data in ({}, {"csrf_token": "forged"}):
        assert client.post(f"/inbox/tasks/{task}/done", data=data).status_code == 403
        assert client.post("/logout", data=data).status_code == 403
    assert client.get("/board").status_code == 200  # still logged in


def test_login_form_needs_its_csrf_token(world: World, client: httpx.Client) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"email": "admin@bayview.example", "password": PASSWORD, "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert "expired" in response.text


def test_session_id_changes_at_login_so_a_planted_cookie_stays_anonymous(
    world: World, served: ServedApp
) -> None:
    with httpx.Client(base_url=served.url) as attacker:
        attacker.get("/login")
        planted = attacker.cookies[COOKIE_NAME]
    with httpx.Client(base_url=served.url) as victim:
        victim.cookies.set(COOKIE_NAME, planted, domain="127.0.0.1")
        page = victim.get("/login")
        response = victim.post(
            "/login",
            data={
                "email": "admin@bayview.example",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert response.status_code == 303
        assert victim.cookies.get(COOKIE_NAME, domain="127.0.0.1") != planted
    with httpx.Client(base_url=served.url, cookies={COOKIE_NAME: planted}) as attacker:
        assert attacker.get("/admin").status_code == 303  # still just a login form session


def test_forged_cookie_is_ignored(world: World, served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, cookies={COOKIE_NAME: "eyJ1aWQiOjF9.forged"}) as client:
        assert client.get("/board").status_code == 303


def test_idle_session_expires(world: World, served: ServedApp) -> None:
    with (
        httpx.Client(base_url=served.url) as client,
        time_machine.travel(utcnow(), tick=True) as traveller,
    ):
        if True:
            log_in(client, "director@bayview.example")
            assert client.get("/board").status_code == 200
            traveller.shift(IDLE_TIMEOUT - timedelta(minutes=5))
            assert client.get("/board").status_code == 200  # and the cookie slides on
            traveller.shift(IDLE_TIMEOUT - timedelta(minutes=5))
            assert client.get("/board").status_code == 200
            traveller.shift(IDLE_TIMEOUT + timedelta(minutes=1))
            response = client.get("/board")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=")


def test_login_attempts_are_rate_limited_per_email_and_ip(
    world: World, client: httpx.Client
) -> None:
    for _ in range(5):
        assert log_in(client, "admin@bayview.example", "guess guess guess").status_code == 401
    blocked = log_in(client, "admin@bayview.example", PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in blocked.text
    # Another login from the same place is not locked out by someone guessing at admin's.
    assert log_in(client, "director@bayview.example").status_code == 303


def test_next_only_goes_to_this_site(world: World, client: httpx.Client) -> None:
    page = client.get("/login?next=//evil.example/x")
    response = client.post(
        "/login",
        data={
            "email": "admin@bayview.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/"


def test_page_redirects_to_login_and_back(world: World, client: httpx.Client) -> None:
    first = client.get(f"/repair-orders/{world.ro['bayview-toyota']}")
    assert first.status_code == 303
    login_page = client.get(first.headers["location"])
    response = client.post(
        "/login",
        data={
            "email": "admin@bayview.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(login_page.text),
            "next": f"/repair-orders/{world.ro['bayview-toyota']}",
        },
    )
    assert response.headers["location"] == f"/repair-orders/{world.ro['bayview-toyota']}"


def test_htmx_poll_after_expiry_asks_the_page_to_go_to_login(
    world: World, client: httpx.Client
) -> None:
    response = client.get("/board/rows?rooftop=bayview-toyota", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"
