"""The board puts what needs a person first, filters, searches the group, and counts live."""

from __future__ import annotations

import re
from datetime import timedelta

from app.auth.models import User
from app.conversations.models import Call, InboundMessage, Task
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.repair_orders.models import RepairOrder, Vehicle
from tests.app.web.conftest import World, add_repair_order, logged_in
from tests.support import ServedApp


def _order(html: str) -> list[int]:
    """The RO ids in the order the board lists them."""
    return [int(n) for n in re.findall(r'<tr id="ro-(\d+)"', html)]


def _shop_day(world: World, database: Database) -> dict[str, int]:
    """At Bayview Toyota: a waiting reply (the world's R1001), an approval, a late car, a
    quiet one promised early, and one closed today."""
    ros = {"reply": world.ro["bayview-toyota"]}
    for name, number, stage in (
        ("approval", "R2001", "awaiting_approval"),
        ("late", "R2002", "in_repair"),
        ("quiet", "R2003", "in_repair"),
        ("closed", "R2004", "closed"),
    ):
        ros[name], _ = add_repair_order(
            database, rooftop_id=world.toyota_id, ro_number=number, first_name=name, stage=stage
        )
    with database.transaction() as session:
        now = utcnow()
        session.get_one(RepairOrder, ros["late"]).promised_at = now - timedelta(minutes=30)
        session.get_one(RepairOrder, ros["quiet"]).promised_at = now + timedelta(minutes=10)
        session.get_one(RepairOrder, ros["closed"]).closed_at = now
    return ros


def test_the_board_lists_what_needs_a_person_first_and_closed_ros_out_of_the_way(
    world: World, served: ServedApp, database: Database
) -> None:
    ros = _shop_day(world, database)
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        board = client.get("/board").text
        assert _order(board) == [ros["reply"], ros["approval"], ros["late"], ros["quiet"]]
        assert "Closed today (1)" in board
        with_closed = client.get("/board?closed=1").text
        assert _order(with_closed)[-1] == ros["closed"]
        rows = client.get("/board/rows?rooftop=bayview-toyota&late=1").text
        assert _order(rows) == [ros["late"]]


def test_a_callback_is_flagged_as_a_callback_not_as_needs_reply(
    world: World, served: ServedApp, database: Database
) -> None:
    ro_id = world.ro["bayview-toyota"]
    with database.transaction() as session:
        session.get_one(Task, world.task["bayview-toyota"]).state = "done"  # answered
        call = Call(
            call_sid="CA" + "1" * 32,
            rooftop_id=world.toyota_id,
            from_address="+14155550142",
            to_address="+14155550100",
            outcome="missed",
        )
        session.add(call)
        session.flush()
        session.add(
            Task(
                rooftop_id=world.toyota_id,
                repair_order_id=ro_id,
                call_id=call.id,
                kind="callback",
                summary="Missed call",
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        row = client.get("/board/rows?rooftop=bayview-toyota").text
    row = row[row.index(f'id="ro-{ro_id}"') :]
    row = row[: row.index("</tr>")]
    assert 'class="flag flag-call-back">call back<' in row and "needs reply" not in row


def test_filters_mine_and_stage_and_an_unknown_stage_is_refused(
    world: World, served: ServedApp, database: Database
) -> None:
    ros = _shop_day(world, database)
    with database.transaction() as session:
        me = session.query(User).filter_by(email="toyota.advisor@bayview.example").one()
        session.get_one(Task, world.task["bayview-toyota"]).assigned_user_id = me.id
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        assert _order(client.get("/board?mine=1").text) == [ros["reply"]]
        stage = client.get("/board?stage=awaiting_approval").text
        assert _order(stage) == [ros["approval"]]
        refused = client.get("/board?stage=teleported")
        assert (
            refused.status_code == 422 and "'teleported' is not one of checked_in" in refused.text
        )


def test_search_finds_by_name_phone_ro_and_vin_only_at_the_users_rooftops(
    world: World, served: ServedApp, database: Database
) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, world.ro["bayview-ford"])
        session.get_one(Vehicle, ro.vehicle_id).vin = "1FTEW1EP5JKD12345"
    with logged_in(served, "director@bayview.example") as director:
        for query in ("sam1 lee", "R1002", "jkd12345", "(415) 555-1002"):
            found = director.get("/search", params={"q": query}).text
            assert f'href="/repair-orders/{world.ro["bayview-ford"]}"' in found, query
        # Harbor Motors is another dealer group: its RO R1003 is never found.
        assert "/repair-orders/" not in director.get("/search", params={"q": "R1003"}).text
        short = director.get("/search", params={"q": "R"})
        assert short.status_code == 422 and "type at least 2 characters" in short.text
    with logged_in(served, "toyota.advisor@bayview.example") as toyota:
        found = toyota.get("/search", params={"q": "Sam1"}).text
        assert "/repair-orders/" not in found and "/customers/" not in found  # Ford's customer


def test_the_inbox_count_is_one_per_conversation_and_live(
    world: World, served: ServedApp, database: Database
) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        assert client.get("/live.json").json() == {"inbox": 1}
        with database.transaction() as session:
            session.add(
                Task(
                    rooftop_id=world.toyota_id,
                    customer_id=world.customer["bayview-toyota"],
                    kind="callback",
                    summary="Sam0 called and hung up",
                )
            )
        live = client.get("/live.json", params={"rooftop": "bayview-toyota"}).json()
        assert live["inbox"] == 1  # the same customer: still one card
        assert live["attention"]["needs reply"] == 1 and live["attention"]["call back"] == 1
        inbox = client.get("/inbox").text
        assert inbox.count('<article class="task card"') == 1
        assert ">needs reply</span>" in inbox and ">callback</span>" in inbox
    with logged_in(served, "director@bayview.example") as director:
        assert director.get("/live.json").json() == {"inbox": 2}  # Toyota's and Ford's


def test_mine_is_the_ros_of_my_dms_advisor_id_and_colleagues_read_my_name(
    world: World, served: ServedApp, database: Database
) -> None:
    ros = _shop_day(world, database)
    with database.transaction() as session:
        me = session.query(User).filter_by(email="toyota.advisor@bayview.example").one()
        me.name, me.dms_advisor_id = "Priya Shah", "ADV-7"
        session.get_one(RepairOrder, ros["late"]).advisor_ref = "ADV-7"
        session.get_one(Task, world.task["bayview-toyota"]).assigned_user_id = me.id
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        assert _order(client.get("/board?mine=1").text) == [ros["reply"], ros["late"]]
        assert "taken by Priya Shah" in client.get("/inbox").text


def test_one_unknown_caller_makes_one_card_with_the_name_a_later_text_gave(
    world: World, served: ServedApp, database: Database
) -> None:
    with database.transaction() as session:
        call = Call(
            call_sid="CA" + "2" * 32,
            rooftop_id=world.toyota_id,
            from_address="+13105550199",
            to_address="+14155550100",
            outcome="missed",
        )
        text = InboundMessage(
            provider_sid="SM" + "3" * 32,
            group_id=session.get_one(Rooftop, world.toyota_id).group_id,
            rooftop_id=world.toyota_id,
            channel="whatsapp",
            from_address="whatsapp:+13105550199",
            to_address="whatsapp:+14155550100",
            body="Hi, I just called about my truck",
            raw={"ProfileName": "Rosa M"},
        )
        session.add_all([call, text])
        session.flush()
        session.add_all(
            [
                Task(rooftop_id=world.toyota_id, call_id=call.id, kind="callback", summary="call"),
                Task(
                    rooftop_id=world.toyota_id,
                    inbound_message_id=text.id,
                    kind="unknown_contact",
                    summary="New contact +13105550199: Hi, I just called about my truck",
                ),
            ]
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        assert client.get("/live.json").json() == {"inbox": 2}  # Sam0's card and this caller's
        inbox = client.get("/inbox").text
    assert inbox.count('<article class="task card"') == 2
    assert inbox.count("Rosa M (+13105550199)") >= 1
