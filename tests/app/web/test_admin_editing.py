"""Issue 31 point 9: admins edit the status map, store hours, templates and users in the app;
every change is audited and exports back to a TOML file that `config load` accepts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
from sqlalchemy import select

from app.auth.models import AdminChange, User
from app.config import parse_dealer_config
from app.dealers.export import dealer_toml
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config, single_group
from app.deps import Database
from tests.app.test_cli import run
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.support import ServedApp

ADMIN = "admin@bayview.example"


def _rooftop_config(database: Database, rooftop_id: int) -> dict:
    with database.transaction() as session:
        return dict(session.get_one(Rooftop, rooftop_id).config)


def _changes(database: Database) -> list[AdminChange]:
    with database.transaction() as session:
        rows = list(session.scalars(select(AdminChange).order_by(AdminChange.id)))
        session.expunge_all()
        return rows


def _status_map_form(csrf: str, rows: dict[str, str]) -> dict[str, str | list[str]]:
    return {"csrf_token": csrf, "raw": list(rows), "stage": list(rows.values())}


def test_status_map_edit_is_saved_audited_and_shown_once(
    world: World, served: ServedApp, database: Database
) -> None:
    before = _rooftop_config(database, world.toyota_id)["status_map"]
    with logged_in(served, ADMIN) as client:
        page = client.get("/admin/rooftops/bayview-toyota")
        assert page.status_code == 200 and 'value="WAITAPPR"' in page.text
        wanted = {**before, "HOLD": "awaiting_parts", "VOID": "", "": ""}
        saved = client.post(
            "/admin/rooftops/bayview-toyota/status-map",
            data=_status_map_form(csrf_of(page.text), wanted),
        )
        assert saved.status_code == 303
        assert saved.headers["location"] == "/admin/rooftops/bayview-toyota"
        shown = client.get("/admin/rooftops/bayview-toyota").text
        assert "Saved the status map of Bayview Toyota." in shown
        # A reload shows the page, not the notice again (and posts nothing).
        assert "Saved the status map" not in client.get("/admin/rooftops/bayview-toyota").text
    after = _rooftop_config(database, world.toyota_id)["status_map"]
    assert after["HOLD"] == "awaiting_parts" and "VOID" not in after
    (change,) = _changes(database)
    assert change.actor == ADMIN and change.subject == "rooftop bayview-toyota: status_map"
    assert '"VOID": "canceled"' in (change.old_value or "") and '"HOLD"' not in change.old_value
    assert '"HOLD": "awaiting_parts"' in (change.new_value or "")


def test_a_stage_that_does_not_exist_is_refused_and_nothing_changes(
    world: World, served: ServedApp, database: Database
) -> None:
    before = _rooftop_config(database, world.toyota_id)
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin/rooftops/bayview-toyota").text)
        refused = client.post(
            "/admin/rooftops/bayview-toyota/status-map",
            data=_status_map_form(csrf, {"HOLD": "parked"}),
        )
    assert refused.status_code == 422
    assert "Not saved: status_map.HOLD:" in refused.text
    assert _rooftop_config(database, world.toyota_id) == before and _changes(database) == []


def test_store_hours_are_checked_then_saved_and_read_in_each_language(
    world: World, served: ServedApp, database: Database
) -> None:
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin/rooftops/bayview-ford").text)
        bad = client.post(
            "/admin/rooftops/bayview-ford/store-hours",
            data={"csrf_token": csrf, "store_hours": "weekdays 7-6"},
        )
        assert bad.status_code == 422 and "cannot read" in bad.text
        assert 'value="weekdays 7-6"' in bad.text  # what was typed stays to be fixed
        good = client.post(
            "/admin/rooftops/bayview-ford/store-hours",
            data={"csrf_token": csrf, "store_hours": "Mon-Sat  8:00-17:00"},
        )
        assert good.status_code == 303
        page = client.get("/admin/rooftops/bayview-ford").text
        assert "Saved the store hours of Bayview Ford." in page
        assert "lunes a sábado" in page.lower() or "lunes" in page.lower()
    assert _rooftop_config(database, world.ford_id)["store_hours"] == "Mon-Sat 8:00-17:00"
    (change,) = _changes(database)
    assert (change.subject, change.new_value) == (
        "rooftop bayview-ford: store_hours",
        "Mon-Sat 8:00-17:00",
    )


def test_template_override_previewed_saved_refused_when_broken_and_removed(
    world: World, served: ServedApp, database: Database
) -> None:
    url = "/admin/templates?rooftop=bayview-toyota&kind=ready_for_pickup&language=es"
    with logged_in(served, ADMIN) as client:
        page = client.get(url)
        assert page.status_code == 200 and re.search(
            r"\d SMS segments? \((GSM-7|UCS-2)\)", page.text
        )
        csrf = csrf_of(page.text)
        form = {"csrf_token": csrf, "rooftop": "bayview-toyota", "kind": "ready_for_pickup",
                "language": "es"}  # fmt: skip
        text = "Hola {{ first_name }}, su {{ vehicle }} esta listo."
        preview = client.post("/admin/templates", data={**form, "source": text})
        assert (
            preview.status_code == 200
            and "Hola Sam, su 2021 Toyota RAV4 esta listo." in preview.text
        )
        assert "1 SMS segment (GSM-7)" in preview.text
        assert "ready_for_pickup.es" not in _rooftop_config(database, world.toyota_id)["templates"]
        broken = client.post(
            "/admin/templates", data={**form, "source": "Hola {{ nombre }}", "action": "save"}
        )
        assert broken.status_code == 422 and "Not saved" in broken.text and "nombre" in broken.text
        saved = client.post("/admin/templates", data={**form, "source": text, "action": "save"})
        assert saved.status_code == 303 and saved.headers["location"] == url
        assert "Saved the override ready_for_pickup.es" in client.get(url).text
        assert _rooftop_config(database, world.toyota_id)["templates"] == {
            "ready_for_pickup.es": text
        }
        removed = client.post("/admin/templates", data={**form, "action": "reset"})
        assert removed.status_code == 303
    assert _rooftop_config(database, world.toyota_id)["templates"] == {}
    subjects = [c.subject for c in _changes(database)]
    assert subjects == ["rooftop bayview-toyota: templates"] * 2


def test_users_get_a_name_and_dms_advisor_id_and_the_error_names_no_cli_flag(
    world: World, served: ServedApp, database: Database
) -> None:
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin").text)
        form = {"csrf_token": csrf, "email": "dana@bayview.example", "password": "longenough1",
                "role": "advisor", "name": "Dana  Ruiz", "dms_advisor_id": "A7"}  # fmt: skip
        refused = client.post("/admin/users", data=form)
        assert refused.status_code == 422
        assert "tick the rooftops" in refused.text and "--rooftop" not in refused.text
        created = client.post("/admin/users", data={**form, "rooftop": "bayview-toyota"})
        assert created.status_code == 303
        page = client.get("/admin").text
        assert "Created Dana Ruiz (advisor)." in page and ">A7<" in page
        with database.transaction() as session:
            dana = session.scalars(select(User).where(User.email == form["email"])).one()
            assert (dana.name, dana.dms_advisor_id) == ("Dana Ruiz", "A7")
            dana_id = dana.id
        edited = client.post(
            f"/admin/users/{dana_id}/profile",
            data={"csrf_token": csrf, "name": "Dana R. Ruiz", "dms_advisor_id": ""},
        )
        assert edited.status_code == 303
    with database.transaction() as session:
        dana = session.get_one(User, dana_id)
        assert (dana.name, dana.dms_advisor_id) == ("Dana R. Ruiz", None)
    created_change, edited_change = _changes(database)
    assert created_change.old_value is None and '"dms_advisor_id": "A7"' in (
        created_change.new_value or ""
    )
    assert '"name": "Dana Ruiz"' in (edited_change.old_value or "")
    assert '"name": "Dana R. Ruiz"' in (edited_change.new_value or "")
    assert "password" not in (created_change.new_value or "")


def test_a_new_token_is_shown_once_and_a_reload_creates_no_second_token(
    world: World, served: ServedApp
) -> None:
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin").text)
        made = client.post(
            "/admin/tokens", data={"csrf_token": csrf, "name": "bi", "role": "director"}
        )
        assert made.status_code == 303 and made.headers["location"] == "/admin"
        first = client.get("/admin")
        token = re.search(r'id="new-token" readonly value="(pw_[^"]+)"', first.text)
        assert token and first.headers["cache-control"] == "no-store"
        again = client.get("/admin").text
        assert token.group(1) not in again and again.count(">bi<") == 1
    answer = httpx.get(
        f"{served.url}/api/v1/reports/declined-recovery",
        headers={"Authorization": f"Bearer {token.group(1)}"},
    )
    assert answer.status_code == 200


def test_advisors_and_directors_cannot_edit_settings(world: World, served: ServedApp) -> None:
    for email in ("toyota.advisor@bayview.example", "director@bayview.example"):
        with logged_in(served, email) as client:
            csrf = csrf_of(client.get("/inbox").text)
            assert client.get("/admin/rooftops/bayview-toyota").status_code == 404
            posted = client.post(
                "/admin/rooftops/bayview-toyota/store-hours",
                data={"csrf_token": csrf, "store_hours": "Mon 1:00-2:00"},
            )
            assert posted.status_code == 404
    with logged_in(served, ADMIN) as client:  # another group's rooftop is not there
        assert client.get("/admin/rooftops/harbor-honda").status_code == 404


def test_edits_export_to_toml_that_loads_unchanged(
    world: World, served: ServedApp, database: Database, database_url: str, tmp_path: Path
) -> None:
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin/rooftops/bayview-toyota").text)
        client.post(
            "/admin/rooftops/bayview-toyota/store-hours",
            data={"csrf_token": csrf, "store_hours": "Mon-Fri 6:30-19:00"},
        )
        client.post(
            "/admin/templates",
            data={"csrf_token": csrf, "rooftop": "bayview-toyota", "kind": "textback",
                  "language": "fr", "source": "Rappel {{ first_name }}", "action": "save"},
        )  # fmt: skip
    with database.transaction() as session:
        text = dealer_toml(session, group=single_group(session, "Bayview Auto Group"))
    document = tomllib.loads(text)
    toyota = document["rooftop"][0]
    assert toyota["store_hours"] == "Mon-Fri 6:30-19:00"
    assert toyota["templates"] == {"textback.fr": "Rappel {{ first_name }}"}
    assert "Harbor" not in text  # one group per file
    with database.transaction() as session:
        report = apply_dealer_config(
            session, config=parse_dealer_config(document, "export"), source="export"
        )
    assert not report.changed and report.unchanged == ["bayview-toyota", "bayview-ford"]
    # The CLI writes the same file, and `config load` accepts it and changes nothing.
    out = tmp_path / "dealer.toml"
    env = {"PITWALL_DATABASE_URL": database_url}
    exported = run(["config", "export", "--group", "Bayview Auto Group", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    assert out.read_text() == text
    loaded = run(["config", "load", str(out)], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "unchanged bayview-toyota, bayview-ford" in loaded.stdout


def test_holidays_are_edited_with_the_store_hours(
    world: World, served: ServedApp, database: Database
) -> None:
    with logged_in(served, ADMIN) as client:
        csrf = csrf_of(client.get("/admin/rooftops/bayview-toyota").text)
        form = {"csrf_token": csrf, "store_hours": "Mon-Fri 7:00-18:00"}
        bad = client.post(
            "/admin/rooftops/bayview-toyota/store-hours", data={**form, "holidays": "Dec 25"}
        )
        assert bad.status_code == 422 and "Not saved: holidays" in bad.text
        good = client.post(
            "/admin/rooftops/bayview-toyota/store-hours",
            data={**form, "holidays": "2026-12-25\n2027-01-01"},
        )
        assert good.status_code == 303
        assert "2027-01-01" in client.get("/admin/rooftops/bayview-toyota").text
    assert _rooftop_config(database, world.toyota_id)["holidays"] == ["2026-12-25", "2027-01-01"]


def test_the_cli_creates_a_user_with_a_name_and_names_its_own_flag_when_refusing(
    world: World, database: Database, database_url: str
) -> None:
    env = {"PITWALL_DATABASE_URL": database_url}
    args = ["users", "create", "--group", "Bayview Auto Group", "--email", "kim@bayview.example",
            "--role", "advisor", "--password-stdin", "--name", "Kim Ito",
            "--dms-advisor-id", "A9"]  # fmt: skip
    refused = run(args, env, stdin="longenough1\n")
    assert refused.returncode == 2 and "--rooftop" in refused.stderr
    made = run([*args, "--rooftop", "bayview-ford"], env, stdin="longenough1\n")
    assert made.returncode == 0, made.stderr
    with database.transaction() as session:
        kim = session.scalars(select(User).where(User.email == "kim@bayview.example")).one()
        assert (kim.name, kim.dms_advisor_id, kim.display_name) == ("Kim Ito", "A9", "Kim Ito")
