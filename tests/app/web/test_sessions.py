"""Server-side sessions: logout, deactivation and a new password end them at once;
idle and absolute expiry are the server's; the login rate limit lives in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import func, select, update

from app.auth.models import LoginAttempt, User, WebSessionRecord
from app.auth.sessions import ABSOLUTE_TIMEOUT, COOKIE_NAME, hash_session_id
from app.auth.throttle import MAX_PER_IP
from app.config import Settings
from app.db import utcnow
from app.deps import Database
from app.main import create_app
from tests.app.web.conftest import PASSWORD, World, csrf_of, log_in, logged_in
from tests.support import ServedApp


def _user_id(database: Database, email: str) -> int:
    with database.transaction() as session:
        return session.scalars(select(User.id).where(User.email == email)).one()


def _open_sessions(database: Database, email: str) -> int:
    with database.transaction() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(WebSessionRecord)
                .where(
                    WebSessionRecord.user_id == _user_id(database, email),
                    WebSessionRecord.revoked_at.is_(None),
                )
            )
            or 0
        )


def _replay(served: ServedApp, cookie: str) -> httpx.Response:
    with httpx.Client(base_url=served.url, cookies={COOKIE_NAME: cookie}) as thief:
        return thief.get("/board")


def test_logout_revokes_the_session_so_a_copied_cookie_stops_working(
    world: World, served: ServedApp, database: Database
) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        copied = client.cookies[COOKIE_NAME]
        assert _replay(served, copied).status_code == 200  # a copy works while logged in
        board = client.get("/board").text
        assert client.post("/logout", data={"csrf_token": csrf_of(board)}).status_code == 303
    replayed = _replay(served, copied)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/login?next=")
    with database.transaction() as session:
        row = session.scalars(select(WebSessionRecord)).one()
        assert row.revoked_at is not None
        # Only a hash of the id is stored; the cookie's id is not in the database.
        assert row.sid_hash != copied and len(row.sid_hash) == 64


def test_a_stranger_loading_the_login_form_writes_nothing(
    world: World, client: httpx.Client, database: Database
) -> None:
    for _ in range(3):
        assert client.get("/login").status_code == 200
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebSessionRecord)) == 0


def test_deactivating_a_user_ends_their_sessions(
    world: World, served: ServedApp, database: Database
) -> None:
    advisor = "ford.advisor@bayview.example"
    with (
        logged_in(served, advisor) as tablet,
        logged_in(served, advisor) as laptop,
        logged_in(served, "admin@bayview.example") as admin,
    ):
        assert tablet.get("/board").status_code == laptop.get("/board").status_code == 200
        page = admin.get("/admin").text
        hidden = '<span class="visually-hidden">'
        assert f"Deactivate{hidden} {advisor}" in page and f"{hidden} admin@" not in page
        user_id = _user_id(database, advisor)
        done = admin.post(f"/admin/users/{user_id}/deactivate", data={"csrf_token": csrf_of(page)})
        assert done.status_code == 303
        assert tablet.get("/board").status_code == laptop.get("/board").status_code == 303
        assert _open_sessions(database, advisor) == 0
        assert "deactivated" in admin.get("/admin").text
        # Another group's user is not this admin's to deactivate.
        harbor = _user_id(database, "director@harbor.example")
        other = admin.post(f"/admin/users/{harbor}/deactivate", data={"csrf_token": csrf_of(page)})
        assert other.status_code == 404
    with httpx.Client(base_url=served.url) as client:
        assert log_in(client, advisor).status_code == 401


def test_a_new_password_ends_every_session_of_that_user(
    world: World, served: ServedApp, database: Database
) -> None:
    advisor = "toyota.advisor@bayview.example"
    with logged_in(served, advisor) as tablet, logged_in(served, "admin@bayview.example") as admin:
        token = csrf_of(admin.get("/admin").text)
        user_id = _user_id(database, advisor)
        short = admin.post(
            "/admin/users/password",
            data={"csrf_token": token, "user_id": user_id, "password": "short"},
        )
        assert short.status_code == 422 and "at least 10" in short.text
        assert tablet.get("/board").status_code == 200  # a refused change ends nothing
        changed = admin.post(
            "/admin/users/password",
            data={"csrf_token": token, "user_id": user_id, "password": "a brand new secret"},
        )
        assert changed.status_code == 303
        assert "1 session(s) ended" in admin.get("/admin").text
        assert tablet.get("/board").status_code == 303
        assert admin.get("/board").status_code == 200  # the admin's own session goes on
    with httpx.Client(base_url=served.url) as client:
        assert log_in(client, advisor).status_code == 401
        assert log_in(client, advisor, "a brand new secret").status_code == 303


def test_admin_sees_sessions_and_can_end_one(
    world: World, served: ServedApp, database: Database
) -> None:
    with (
        httpx.Client(base_url=served.url, headers={"User-Agent": "ShopTablet/1.0"}) as tablet,
        logged_in(served, "admin@bayview.example") as admin,
        logged_in(served, "director@harbor.example") as stranger,
    ):
        assert log_in(tablet, "director@bayview.example").status_code == 303
        page = admin.get("/admin").text
        assert "ShopTablet/1.0" in page and "127.0.0.1" in page
        assert "this browser" in page and "director@harbor.example" not in page
        with database.transaction() as session:
            ids = {
                u.email: s.id
                for s, u in session.execute(
                    select(WebSessionRecord, User).join(User, User.id == WebSessionRecord.user_id)
                )
            }
        token = csrf_of(page)
        foreign = admin.post(
            f"/admin/sessions/{ids['director@harbor.example']}/revoke", data={"csrf_token": token}
        )
        assert foreign.status_code == 404 and stranger.get("/board").status_code == 200
        ended = admin.post(
            f"/admin/sessions/{ids['director@bayview.example']}/revoke",
            data={"csrf_token": token},
        )
        assert ended.status_code == 303
        assert tablet.get("/board").status_code == 303


def test_sessions_expire_after_twelve_hours_however_busy(world: World, served: ServedApp) -> None:
    with (
        httpx.Client(base_url=served.url) as client,
        time_machine.travel(utcnow(), tick=True) as traveller,
    ):
        assert log_in(client, "director@bayview.example").status_code == 303
        step = timedelta(minutes=50)
        busy = timedelta()
        while busy + step < ABSOLUTE_TIMEOUT:
            traveller.shift(step)
            busy += step
            assert client.get("/board").status_code == 200, busy
        traveller.shift(ABSOLUTE_TIMEOUT - busy + timedelta(minutes=1))
        assert client.get("/board").status_code == 303


def test_last_seen_is_written_at_most_once_a_minute(
    world: World, served: ServedApp, database: Database
) -> None:
    def last_seen() -> object:
        with database.transaction() as session:
            return session.scalars(select(WebSessionRecord.last_seen_at)).one()

    with (
        httpx.Client(base_url=served.url) as client,
        time_machine.travel(utcnow(), tick=False) as traveller,
    ):
        assert log_in(client, "director@bayview.example").status_code == 303
        at_login = last_seen()
        traveller.shift(timedelta(seconds=30))
        for _ in range(5):  # the board polling
            assert client.get("/board/rows?rooftop=bayview-toyota").status_code == 200
        assert last_seen() == at_login
        traveller.shift(timedelta(seconds=31))
        client.get("/board/rows?rooftop=bayview-toyota")
        assert last_seen() == at_login + timedelta(seconds=61)  # type: ignore[operator]


@pytest.fixture
def two_web_processes(settings: Settings, database: Database) -> Iterator[tuple[str, str]]:
    """Two app instances sharing one database, as two `pitwall serve` processes would."""
    with (
        ServedApp(create_app(settings, database=database)) as first,
        ServedApp(create_app(settings, database=database)) as second,
    ):
        yield first.url, second.url


def test_login_rate_limit_holds_across_web_processes(
    world: World, two_web_processes: tuple[str, str], database: Database
) -> None:
    first, second = (httpx.Client(base_url=url) for url in two_web_processes)
    with first, second:
        for client in (first, second, first, second, first):
            assert log_in(client, "admin@bayview.example", "guess guess").status_code == 401
        for client in (first, second):
            blocked = log_in(client, "admin@bayview.example", PASSWORD)
            assert blocked.status_code == 429
            assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
            assert "Too many failed attempts" in blocked.text
        assert log_in(second, "director@bayview.example").status_code == 303
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 5


def test_a_good_login_clears_the_count_and_old_failures_age_out(
    world: World, client: httpx.Client, database: Database
) -> None:
    with time_machine.travel(utcnow(), tick=True) as traveller:
        log_in(client, "someone.else@bayview.example", "guess guess")
        for _ in range(4):
            assert log_in(client, "director@bayview.example", "guess guess").status_code == 401
        assert log_in(client, "director@bayview.example").status_code == 303
        client.cookies.clear()
        for _ in range(4):  # the count started again
            assert log_in(client, "director@bayview.example", "guess guess").status_code == 401
        assert log_in(client, "director@bayview.example", "guess guess").status_code == 401
        assert log_in(client, "director@bayview.example").status_code == 429
        traveller.shift(timedelta(minutes=16))
        assert log_in(client, "director@bayview.example").status_code == 303
        traveller.shift(timedelta(hours=2))
        client.cookies.clear()
        log_in(client, "nobody@bayview.example", "guess guess")
    with database.transaction() as session:  # older rows were pruned on the way
        assert session.scalars(select(LoginAttempt.email)).all() == ["nobody@bayview.example"]


def test_one_address_spraying_many_emails_is_stopped(
    world: World, client: httpx.Client, database: Database
) -> None:
    now = utcnow()
    with database.transaction() as session:
        session.add_all(
            LoginAttempt(email=f"guess{n}@bayview.example", ip="127.0.0.1", attempted_at=now)
            for n in range(MAX_PER_IP - 1)
        )
    assert log_in(client, "guess-last@bayview.example", "guess guess").status_code == 401
    blocked = log_in(client, "admin@bayview.example")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 15 * 60
    with database.transaction() as session:  # a different address is not affected
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == MAX_PER_IP
        session.execute(update(LoginAttempt).values(ip="10.0.0.9"))
    assert log_in(client, "admin@bayview.example").status_code == 303


def test_session_ids_are_stored_hashed(world: World, served: ServedApp, database: Database) -> None:
    with logged_in(served, "director@bayview.example") as client:
        cookie = client.cookies[COOKIE_NAME]
        sid = _sid_of(cookie)
    with database.transaction() as session:
        row = session.scalars(select(WebSessionRecord)).one()
    assert row.sid_hash == hash_session_id(sid) and sid not in (row.sid_hash, row.csrf_token)


def _sid_of(cookie: str) -> str:
    from app.auth.sessions import SessionCodec

    value = SessionCodec("test-secret-key").loads(cookie, now=utcnow())
    assert value is not None and value.sid is not None
    return value.sid
