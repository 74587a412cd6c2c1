"""What the pages show and do: board flags, inbox actions, reports against the API, admin."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from app.auth.models import ApiToken, User
from app.conversations.models import InboundMessage, Task
from app.customers.models import Consent, CustomerPhone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine
from app.web.charts import bar_chart
from app.web.export import csv_response
from tests.app.web.conftest import World, add_repair_order, csrf_of, logged_in
from tests.support import ServedApp


def _row(html: str, ro_id: int) -> str:
    match = re.search(rf'<tr id="ro-{ro_id}".*?</tr>', html, re.S)
    assert match, f"RO {ro_id} is not on the board"
    return match.group(0)


def test_board_flags_what_needs_attention(
    world: World, served: ServedApp, database: Database
) -> None:
    late, _ = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R2001", first_name="Ava"
    )
    waiting, _ = add_repair_order(
        database,
        rooftop_id=world.toyota_id,
        ro_number="R2002",
        first_name="Bo",
        stage="awaiting_approval",
    )
    opted, opted_customer = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R2003", first_name="Cy"
    )
    unreachable, unreachable_customer = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R2004", first_name="Di"
    )
    with database.transaction() as session:
        session.get_one(RepairOrder, late).promised_at = utcnow() - timedelta(minutes=30)
        link = session.scalars(
            select(CustomerPhone).where(CustomerPhone.customer_id == opted_customer)
        ).one()
        session.add(
            Consent(
                group_id=1,
                phone_id=link.phone_id,
                customer_id=opted_customer,
                channel="sms",
                purpose="status",
                action="revoked",
                source="keyword",
            )
        )
        for gone in session.scalars(
            select(CustomerPhone).where(CustomerPhone.customer_id == unreachable_customer)
        ):
            session.delete(gone)
        inbound = session.get_one(InboundMessage, 1)
        inbound.body = "<script>alert('x')</script> is it done?"
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        board = client.get("/board").text
    assert "late" in _row(board, late) and "is-late" in _row(board, late)
    assert "awaiting approval" in _row(board, waiting)
    assert "opted out" in _row(board, opted)
    assert "not textable" in _row(board, unreachable)
    first = _row(board, world.ro["bayview-toyota"])
    assert "needs reply" in first and "late" not in first
    assert "<script>alert" not in board and "&lt;script&gt;alert" in board
    assert 'hx-trigger="every 3s"' in board


def test_reply_from_the_inbox_goes_through_the_outbox_once(
    world: World, served: ServedApp, database: Database
) -> None:
    task_id = world.task["bayview-toyota"]
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
        assert "When is my car ready? (bayview-toyota)" in inbox
        assert "waiting <strong>12 min</strong>" in inbox
        form = {
            "csrf_token": csrf_of(inbox),
            "body": "Ready at 4, see you then!",
            "request_id": "0123456789abcdef-1",
        }
        first = client.post(f"/inbox/tasks/{task_id}/reply", data=form)
        again = client.post(f"/inbox/tasks/{task_id}/reply", data=form)  # a double click
        assert first.status_code == again.status_code == 303
        assert "(bayview-toyota)" not in client.get("/inbox").text
    with database.transaction() as session:
        sent = list(session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "reply")))
        user = session.scalars(select(User).where(User.email.startswith("toyota"))).one()
        assert [(m.body, m.created_by_user_id, m.to_address) for m in sent] == [
            ("Ready at 4, see you then!", user.id, sent[0].to_address)
        ]
        assert session.get_one(Task, task_id).state == "done"


def test_take_and_mark_done_over_htmx(world: World, served: ServedApp, database: Database) -> None:
    task_id = world.task["bayview-ford"]
    with logged_in(served, "director@bayview.example") as client:
        token = csrf_of(client.get("/inbox").text)
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        taken = client.post(f"/inbox/tasks/{task_id}/take", headers=headers)
        assert taken.status_code == 200 and "taken by Director" in taken.text
        done = client.post(f"/inbox/tasks/{task_id}/done", headers=headers)
        assert done.status_code == 200 and f'id="task-{task_id}"' not in done.text
    with database.transaction() as session:
        task = session.get_one(Task, task_id)
        assert task.state == "done" and task.assigned_user_id is not None


def test_director_page_shows_the_same_recovery_numbers_as_the_api(
    world: World, served: ServedApp, database: Database
) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, world.ro["bayview-toyota"])
        ro.stage, ro.closed_at = "closed", utcnow() - timedelta(days=2)
        session.add_all(
            [
                RoLine(
                    repair_order_id=ro.id,
                    line_code="A",
                    op_code="BRKPAD",
                    description="Front brake pads",
                    amount_cents=41200,
                    status="declined",
                ),
                RoLine(
                    repair_order_id=ro.id,
                    line_code="B",
                    op_code="WIPER",
                    description="Wiper blades",
                    amount_cents=4995,
                    status="declined",
                ),
            ]
        )
    with logged_in(served, "director@bayview.example") as client:
        page = client.get("/reports?days=30").text
        since = re.search(r'data-since="([\d-]+)"', page).group(1)  # type: ignore[union-attr]
        api = client.get(f"/api/v1/reports/declined-recovery?since={since}").json()
        csv = client.get("/reports/declined-recovery.csv?days=30")
    for kpi, key in (
        ("declined", "declined_cents"),
        ("recovered", "recovered_cents"),
        ("followed-up", "followed_up_cents"),
        ("recovered-after", "recovered_after_followup_cents"),
    ):
        shown = re.search(rf'data-cents="(\d+)" id="kpi-{kpi}"', page).group(1)  # type: ignore[union-attr]
        assert int(shown) == api[key], kpi
    assert api["declined_cents"] == 46195
    assert "$461.95" in page
    assert csv.headers["content-type"].startswith("text/csv") and "BRKPAD" in csv.text


def test_every_chart_has_a_csv(world: World, served: ServedApp) -> None:
    with logged_in(served, "admin@bayview.example") as client:
        page = client.get("/reports?rooftop=bayview-ford&days=7").text
        links = re.findall(r'href="(/reports/[a-z-]+\.csv\?[^"]+)"', page)
        assert len(links) == 7  # the sample holds plans out: followed against held out too
        for link in links:
            response = client.get(link.replace("&amp;", "&"))
            assert response.status_code == 200, link
            assert response.headers["content-disposition"].startswith("attachment")
        assert client.get("/reports?rooftop=harbor-honda").status_code == 404
        assert client.get("/reports?days=3").status_code == 422
    assert page.count("<svg") == 4 and 'role="img"' in page


def test_admin_adds_a_user_and_a_token(world: World, served: ServedApp, database: Database) -> None:
    with logged_in(served, "admin@bayview.example") as client:
        admin = client.get("/admin").text
        for section in (
            "Rooftops and poll health",
            "Status map",
            "DMS quarantine",
            "Users",
            "API tokens",
            "Bayview Ford",
        ):
            assert section in admin
        token = csrf_of(admin)
        bad = client.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "email": "new@bayview.example",
                "password": "longenough1",
                "role": "advisor",
            },
        )
        assert bad.status_code == 422 and "at least one rooftop" in bad.text
        good = client.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "email": "new@bayview.example",
                "password": "longenough1",
                "role": "advisor",
                "rooftop": ["bayview-ford"],
            },
        )
        assert good.status_code == 303  # post-redirect-get: a reload does not post again
        assert "Created new@bayview.example" in client.get("/admin").text
        made = client.post(
            "/admin/tokens", data={"csrf_token": token, "name": "bi-tool", "role": "director"}
        )
        assert made.status_code == 303
        shown = re.search(r'id="new-token" readonly value="(pw_[^"]+)"', client.get("/admin").text)
        assert shown
    api = httpx.get(
        f"{served.url}/api/v1/reports/declined-recovery",
        headers={"Authorization": f"Bearer {shown.group(1)}"},
    )
    assert api.status_code == 200
    with database.transaction() as session:
        user = session.scalars(select(User).where(User.email == "new@bayview.example")).one()
        assert [r.slug for r in user.rooftops] == ["bayview-ford"]
        assert session.scalars(select(ApiToken).where(ApiToken.name == "bi-tool")).one()


def test_template_preview_renders_with_the_rooftops_settings(
    world: World, served: ServedApp
) -> None:
    with logged_in(served, "admin@bayview.example") as client:
        page = client.get("/admin/templates?rooftop=bayview-toyota&kind=ready_for_pickup").text
        assert "Bayview Toyota" in page and 'class="bubble"' in page and "segment" in page
        assert client.get("/admin/templates?kind=no_such_template").status_code == 404


def test_charts_and_csv_escape_what_comes_from_outside() -> None:
    svg = str(bar_chart(chart_id="c", title="<b>t</b>", bars=[("<x>", 3)]))
    assert "<b>" not in svg and "&lt;x&gt;" in svg
    body = csv_response("x.csv", ["op"], [['=HYPERLINK("http://e")'], ["ok"]]).body
    assert b"'=HYPERLINK" in body


def test_declined_recovery_csv_keeps_dms_formulas_as_text(
    world: World, served: ServedApp, database: Database
) -> None:
    """Found by probing: op codes and descriptions from the DMS went into the CSV raw."""
    hostile = {
        "=1+1": '=HYPERLINK("http://evil.example","brakes")',
        "+SUM(A1)": "-2+3",
        "@CMD": "\t=1",
    }
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, world.ro["bayview-toyota"])
        ro.advisor_name = "=Dana"
        for n, (op_code, description) in enumerate(hostile.items()):
            session.add(
                RoLine(
                    repair_order_id=ro.id,
                    line_code=str(n),
                    op_code=op_code,
                    description=description,
                    amount_cents=100,
                    status="declined",
                )
            )
    bearer = {"Authorization": f"Bearer {world.admin_token}"}
    with logged_in(served, "director@bayview.example") as client:
        answers = [
            client.get("/reports/declined-recovery.csv?days=30"),
            httpx.get(f"{served.url}/api/v1/reports/declined-recovery.csv", headers=bearer),
            httpx.get(f"{served.url}/api/v1/reports/declined-recovery?format=csv", headers=bearer),
        ]
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(rows) == 3
        cells = [cell for row in rows for cell in (row["op_code"], row["description"])]
        assert sorted(cells) == sorted("'" + c for c in (*hostile, *hostile.values()))
        assert {row["advisor"] for row in rows} == {"'=Dana"}
        # The page's CSV is in dollars for people; the API's keeps its contract's cents.
        amount = "declined_usd" if "declined_usd" in rows[0] else "declined_cents"
        assert {row[amount] for row in rows} == ({"1.00"} if amount == "declined_usd" else {"100"})


def test_admin_page_shows_that_dms_credentials_are_set_never_their_values(
    world: World, served: ServedApp, database: Database
) -> None:
    """Found by probing: the admin page printed each rooftop's whole [rooftop.dms] table."""
    secrets = {
        "bayview-toyota": {
            "kind": "cdk",
            "base_url": "https://api.cdk.example",
            "token_url": "https://auth.cdk.example/oauth/token",
            "client_id": "pitwall-bayview",
            "client_secret": "cdk-client-secret-7f3a",
            "token": "bridge-token-19ce",
        },
        "bayview-ford": {
            "kind": "dealertrack",
            "base_url": "https://svc-user:url-password-55e1@dt.example/api",
            "dealer_id": "D-9",
            "username": "bayview-service-login",
            "password": "dt-password-0b2d",
            "secret_key": "dt-secret-key-a4c8",
        },
    }
    with database.transaction() as session:
        for rooftop_id, slug in (
            (world.toyota_id, "bayview-toyota"),
            (world.ford_id, "bayview-ford"),
        ):
            rooftop = session.get_one(Rooftop, rooftop_id)
            rooftop.config = {**rooftop.config, "dms": secrets[slug]}
    with logged_in(served, "admin@bayview.example") as client:
        page = client.get("/admin").text
    for value in (
        "cdk-client-secret-7f3a",
        "bridge-token-19ce",
        "bayview-service-login",
        "dt-password-0b2d",
        "dt-secret-key-a4c8",
        "url-password-55e1",
    ):
        assert value not in page, value
    assert page.count("(set)") == 5
    # What is not a credential still shows, so the admin can check the file was loaded.
    for shown in ("https://api.cdk.example", "https://auth.cdk.example/oauth/token", "D-9"):
        assert shown in page, shown
