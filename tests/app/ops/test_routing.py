"""Where Twilio really sends a rooftop's texts: Messaging Services (A2P 10DLC) in `pitwall
doctor` and `pitwall twilio connect`, and who answers STOP, read from what Twilio sent.

The sandbox serves ``/v1/Services`` as Twilio's Messaging API does, and routes a customer's
text by the same rule: a number in a service gets its texts at the service's inbound URL
unless the service defers to the number's own webhook.
"""

from __future__ import annotations

import httpx
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner, Result

from app import wiring
from app.conversations.models import InboundMessage
from app.dealers.models import Rooftop
from app.ops.cli import twilio_app
from app.ops.doctor import Finding
from app.ops.doctor_twilio import WebhookUrls
from integrations.twilio.sandbox_services import ServiceDirectory
from tests.app.ops.conftest import PUBLIC_URL, TOYOTA, OpsWorld
from tests.app.ops.test_doctor import doctor

URLS = WebhookUrls.for_public_url(PUBLIC_URL)
OLD = "https://old-vendor.example/sms"


@pytest.fixture
def cli(world: OpsWorld, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(wiring, "build_phone_numbers", lambda s: world.numbers(), raising=False)
    return CliRunner()


def services(world: OpsWorld) -> ServiceDirectory:
    found: ServiceDirectory = world.sandbox.app.state.services
    return found


def connect(cli: CliRunner, *args: str) -> Result:
    app = typer.Typer()
    app.add_typer(twilio_app, name="twilio")
    return cli.invoke(app, ["twilio", "connect", *args])


def routing(findings: list[Finding], rooftop: str = "bayview-toyota") -> list[tuple[str, str]]:
    return [(f.status, f.detail) for f in findings if (f.check, f.rooftop) == ("routing", rooftop)]


def test_a_number_in_a_service_that_sends_texts_elsewhere_is_a_problem_until_connect(
    world: OpsWorld, cli: CliRunner
) -> None:
    world.load_dealer()
    world.point_all_numbers_at_pitwall()  # the number's own webhook is right ...
    service = services(world).add((TOYOTA,), inbound_request_url=OLD)  # ... and ignored
    found = routing(doctor(world))
    assert (
        "problem",
        f"texts to {TOYOTA} go to Messaging Service {service.sid}'s inbound URL "
        f"{OLD}, not to Pitwall; the number's own SmsUrl is ignored",
    ) in found
    assert any(status == "warn" and "does not name" in detail for status, detail in found)
    # The sandbox routes the way Twilio does: this text never reaches Pitwall.
    sent = httpx.post(
        f"{world.sandbox.url}/_sandbox/inbound", json={"from": "+14155550142", "body": "hi"}
    ).json()
    assert sent["error"] == f"Twilio sent this text to {OLD}, not to Pitwall"

    result = connect(cli)
    assert result.exit_code == 0, result.output
    assert f"InboundRequestUrl: {OLD} -> {URLS.sms}" in result.output
    assert services(world).get(service.sid).inbound_request_url == URLS.sms  # type: ignore[union-attr]
    assert all(status != "problem" for status, _detail in routing(doctor(world)))


def test_a_service_that_defers_to_its_numbers_needs_each_numbers_own_webhook(
    world: OpsWorld, cli: CliRunner
) -> None:
    service = services(world).add((TOYOTA,), use_inbound_webhook_on_number=True)
    world.load_dealer(toyota_extra=f'messaging_service_sid = "{service.sid}"')
    found = routing(doctor(world))
    assert (
        "problem",
        f"{service.sid} uses each number's own webhook, and {TOYOTA}'s SmsUrl is (empty)",
    ) in found
    assert connect(cli).exit_code == 0
    assert routing(doctor(world)) == []


def test_connect_leaves_a_service_shared_with_numbers_pitwall_does_not_know(
    world: OpsWorld, cli: CliRunner
) -> None:
    world.load_dealer()
    service = services(world).add((TOYOTA, "+14155550999"), inbound_request_url=OLD)
    result = connect(cli, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "also holds numbers Pitwall does not know (+14155550999)" in result.output
    assert services(world).get(service.sid).inbound_request_url == OLD  # type: ignore[union-attr]


def test_a_us_long_code_in_no_service_is_warned_about_10dlc(world: OpsWorld) -> None:
    world.load_dealer()
    world.point_all_numbers_at_pitwall()
    found = routing(doctor(world), "bayview-ford")
    assert len(found) == 1 and found[0][0] == "warn" and "A2P 10DLC (error 30034)" in found[0][1]


def test_doctor_reads_advanced_opt_out_from_what_twilio_sent(world: OpsWorld) -> None:
    world.load_dealer()
    with world.database.transaction() as session:
        toyota = session.scalar(select(Rooftop).where(Rooftop.slug == "bayview-toyota"))
        assert toyota is not None
        session.add(
            InboundMessage(
                provider_sid="SM" + "7" * 32,
                group_id=toyota.group_id,
                rooftop_id=toyota.id,
                channel="sms",
                from_address="+14155550142",
                to_address=TOYOTA,
                body="PARAR",
                reply_kind="opt_out",
                raw={"Body": "PARAR", "OptOutType": "STOP"},
            )
        )
    keywords = {f.rooftop: f for f in doctor(world) if f.check == "keywords"}
    assert keywords["bayview-toyota"].status == "warn"
    assert keywords["bayview-toyota"].fix == 'set carrier_keywords = "advanced" for this rooftop'
    assert keywords["bayview-ford"].status == "ok"
    assert keywords["bayview-ford"].detail.startswith("Twilio answers STOP/START/HELP itself")
