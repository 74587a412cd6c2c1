"""Approving and declining lines on the page: one confirmation, one record, one task."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from app.conversations.models import Approval, Task
from app.customer_page.models import LineAnswer, LineNote, PageAnswer
from app.deps import Database
from app.repair_orders.models import RoLine
from tests.app.customer_page.conftest import Shop, new_link

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match
    return match.group(1)


def choose(shop: Shop, page_client: httpx.Client, **choices: str) -> dict[str, str]:
    page = page_client.get(f"/c/{shop.token}")
    form = {"csrf_token": csrf(page.text)}
    form.update({f"line-{shop.lines[code]}": choice for code, choice in choices.items()})
    return form


def test_review_shows_one_confirmation_with_the_total_and_writes_nothing(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve", C="decline")
    review = page_client.post(f"/c/{shop.token}/review", data=form)
    assert review.status_code == 200, review.text
    assert "Please confirm" in review.text
    assert "Total approved: <strong>$412.00</strong>" in review.text
    with database.transaction() as session:
        assert session.scalars(select(PageAnswer)).all() == []


def test_confirming_records_what_was_shown_and_tasks_the_advisor(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve", C="decline")
    answer = page_client.post(
        f"/c/{shop.token}/answer", data=form, headers={"User-Agent": "TestPhone/1.0"}
    )
    assert answer.status_code == 303
    thanks = page_client.get(answer.headers["location"])
    assert "Dana has your answer" in thanks.text
    with database.transaction() as session:
        recorded = session.scalars(select(PageAnswer)).one()
        assert recorded.user_agent == "TestPhone/1.0" and recorded.ip == "127.0.0.1"
        assert recorded.approved_cents == 41200 and recorded.declined_cents == 3995
        assert {(r["description"], r["amount_cents"], r["choice"]) for r in recorded.lines} == {
            ("Front brake pads", 41200, "approve"),
            ("Wiper blades", 3995, "decline"),
        }
        assert recorded.requested_at is not None
        brakes = session.get_one(RoLine, shop.lines["B"])
        wipers = session.get_one(RoLine, shop.lines["C"])
        assert brakes.customer_approved_at is not None and wipers.customer_approved_at is None
        approval = session.scalars(select(Approval)).one()
        assert approval.channel == "page" and approval.total_cents == 41200
        task = session.scalars(select(Task).where(Task.kind == "approval")).one()
        assert "approved Front brake pads $412.00" in task.summary
        assert "declined Wiper blades $39.95" in task.summary
        assert "enter it in the DMS" in task.summary


def test_a_double_submit_approves_once(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve", C="approve")
    first = page_client.post(f"/c/{shop.token}/answer", data=form)
    again = page_client.post(f"/c/{shop.token}/answer", data=form)
    assert first.status_code == 303
    assert again.status_code == 409 and "no longer waits for your approval" in again.text
    with database.transaction() as session:
        assert len(session.scalars(select(PageAnswer)).all()) == 1
        assert len(session.scalars(select(Approval)).all()) == 1
        assert len(session.scalars(select(Task).where(Task.kind == "approval")).all()) == 1


def test_two_submits_at_the_same_moment_record_one_answer(
    shop: Shop, page_client: httpx.Client, database: Database, served: object
) -> None:
    form = choose(shop, page_client, B="approve", C="decline")

    def submit(_: int) -> int:
        with httpx.Client(base_url=served.url, timeout=10) as http:  # type: ignore[attr-defined]
            return http.post(f"/c/{shop.token}/answer", data=form).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(submit, range(4)))
    assert codes.count(303) == 1, codes
    with database.transaction() as session:
        assert len(session.scalars(select(LineAnswer)).all()) == 2
        assert len(session.scalars(select(Approval)).all()) == 1


def test_a_line_the_advisor_already_entered_says_so_and_changes_nothing(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve")
    with database.transaction() as session:
        for code in ("B", "C"):
            session.get_one(RoLine, shop.lines[code]).status = "approved"  # entered in the DMS
    response = page_client.post(f"/c/{shop.token}/answer", data=form)
    assert response.status_code == 409
    assert "Front brake pads no longer waits for your approval" in response.text
    with database.transaction() as session:
        assert session.scalars(select(PageAnswer)).all() == []
        assert session.get_one(RoLine, shop.lines["B"]).customer_approved_at is None


def test_a_price_changed_after_the_confirmation_screen_is_not_approved_unseen(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve", C="decline")
    review = page_client.post(f"/c/{shop.token}/review", data=form)
    shown = re.search(r'name="shown" value="([0-9a-f]+)"', review.text)
    assert shown is not None
    with database.transaction() as session:
        session.get_one(RoLine, shop.lines["B"]).amount_cents = 52000  # the DMS re-prices
    response = page_client.post(f"/c/{shop.token}/answer", data={**form, "shown": shown.group(1)})
    assert response.status_code == 409 and "price changed" in response.text
    with database.transaction() as session:
        assert session.scalars(select(PageAnswer)).all() == []
    again = page_client.post(f"/c/{shop.token}/review", data=form)
    assert "$520.00" in again.text  # the customer sees the new price before confirming


def test_a_closed_repair_order_takes_no_approval(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    from app.db import utcnow
    from app.repair_orders.models import RepairOrder

    form = choose(shop, page_client, B="approve", C="approve")
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, shop.ro_id)
        ro.stage, ro.closed_at = "closed", utcnow()
    response = page_client.post(f"/c/{shop.token}/answer", data=form)
    assert response.status_code == 409
    with database.transaction() as session:
        assert session.scalars(select(PageAnswer)).all() == []


def test_every_waiting_line_needs_a_choice_before_the_review(
    shop: Shop, page_client: httpx.Client
) -> None:
    form = choose(shop, page_client, B="approve")
    response = page_client.post(f"/c/{shop.token}/review", data=form)
    assert response.status_code == 422
    assert "Choose approve or decline for each item." in response.text


def test_a_post_without_the_page_csrf_token_is_refused(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    form = choose(shop, page_client, B="approve", C="approve")
    other_token = new_link(database, shop.ro_id)
    # The CSRF token of one link does not work on another link of the same RO.
    for data in (
        {**form, "csrf_token": "forged"},
        {k: v for k, v in form.items() if k != "csrf_token"},
    ):
        assert page_client.post(f"/c/{shop.token}/answer", data=data).status_code == 403
    assert page_client.post(f"/c/{other_token}/answer", data=form).status_code == 403
    with database.transaction() as session:
        assert session.scalars(select(PageAnswer)).all() == []


def test_a_line_declined_on_the_page_no_longer_waits_on_a_text_yes(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    from app.conversations.matching import awaiting_approval, find_or_create_contact
    from app.dealers.models import Rooftop

    def waiting() -> list[str]:
        with database.transaction() as session:
            rooftop = session.get_one(Rooftop, shop.rooftop_id)
            contact = find_or_create_contact(session, rooftop=rooftop, e164="+14155552001")
            found = awaiting_approval(session, contact=contact, rooftop=rooftop)
            return [line.description for _, lines in found for line in lines]

    assert waiting() == ["Front brake pads", "Wiper blades"]
    form = choose(shop, page_client, B="decline", C="decline")
    assert page_client.post(f"/c/{shop.token}/answer", data=form).status_code == 303
    assert waiting() == []  # a later "YES" by text cannot approve what was declined here


def test_the_dms_note_is_shown_before_the_advisors_and_kept_with_the_answer(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    with database.transaction() as session:
        session.get_one(RoLine, shop.lines["B"]).note = "Pads at 3 mm (new is 10 mm)."
        session.add(
            LineNote(ro_line_id=shop.lines["B"], note="Photo shows the wear.", source="advisor")
        )
    page = page_client.get(f"/c/{shop.token}").text
    assert page.index("Pads at 3 mm (new is 10 mm).") < page.index("Photo shows the wear.")
    form = choose(shop, page_client, B="approve", C="decline")
    assert page_client.post(f"/c/{shop.token}/answer", data=form).status_code == 303
    with database.transaction() as session:
        recorded = session.scalars(select(PageAnswer)).one()
        (brakes,) = [r for r in recorded.lines if r["description"] == "Front brake pads"]
    assert brakes["notes"] == ["Pads at 3 mm (new is 10 mm).", "Photo shows the wear."]


def test_after_answering_the_header_says_the_answer_is_in_until_the_dms_moves(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    before = page_client.get(f"/c/{shop.token}").text
    form = choose(shop, page_client, B="approve", C="decline")
    assert page_client.post(f"/c/{shop.token}/answer", data=form).status_code == 303
    after = page_client.get(f"/c/{shop.token}").text
    assert "Waiting for your approval" in before and "We have your answer" not in before
    assert "We have your answer" in after and "Waiting for your approval" not in after
    assert "the shop to enter your answer" in after
    # A later visit shows what was chosen, and asks nothing again.
    answers = after.split('class="card your-answers"')[1].split("</section>")[0]
    assert "Front brake pads" in answers and "Wiper blades" in answers
    assert "Approved" in answers and "Declined" in answers and 'id="approval-form"' not in after
