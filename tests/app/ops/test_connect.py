"""`pitwall twilio connect` against the sandbox: shows old -> new, --dry-run changes nothing."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from app import wiring
from app.ops.cli import twilio_app
from app.ops.doctor_twilio import WebhookUrls
from tests.app.ops.conftest import FORD, PUBLIC_URL, TOYOTA, OpsWorld

URLS = WebhookUrls.for_public_url(PUBLIC_URL)


@pytest.fixture
def cli(world: OpsWorld, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(wiring, "build_phone_numbers", lambda s: world.numbers(), raising=False)
    return CliRunner()


def root() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(twilio_app, name="twilio")
    return app


def urls_of(world: OpsWorld, number: str) -> tuple[str, str, str]:
    found = next(n for n in world.sandbox.state.list_numbers() if n.phone_number == number)
    return found.sms_url, found.voice_url, found.status_callback


def test_dry_run_shows_each_change_and_changes_nothing(world: OpsWorld, cli: CliRunner) -> None:
    world.load_dealer()
    result = cli.invoke(root(), ["twilio", "connect", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"SmsUrl: (empty) -> {URLS.sms}" in result.output
    assert f"VoiceUrl: (empty) -> {URLS.voice}" in result.output
    assert f"StatusCallback: (empty) -> {URLS.status}" in result.output
    assert "dry run: 3 to change, nothing changed." in result.output
    assert urls_of(world, TOYOTA) == ("", "", "")


def test_connect_points_every_number_then_has_nothing_to_do(
    world: OpsWorld, cli: CliRunner
) -> None:
    world.load_dealer()
    toyota = next(n for n in world.sandbox.state.list_numbers() if n.phone_number == TOYOTA)
    world.sandbox.state.update_number(toyota.sid, {"sms_url": "https://old.example/sms"})

    result = cli.invoke(root(), ["twilio", "connect"])
    assert result.exit_code == 0, result.output
    assert f"SmsUrl: https://old.example/sms -> {URLS.sms}" in result.output
    assert "3 updated, 0 failed." in result.output
    for number in (TOYOTA, FORD):
        assert urls_of(world, number) == (URLS.sms, URLS.voice, URLS.status)

    again = cli.invoke(root(), ["twilio", "connect"])
    assert again.exit_code == 0, again.output
    assert "already points at Pitwall" in again.output and "nothing to change." in again.output


def test_a_messaging_service_the_sandbox_lacks_is_reported(world: OpsWorld, cli: CliRunner) -> None:
    # The sandbox has no Messaging Services API: the service is "not found" there.
    world.load_dealer(toyota_extra=f'messaging_service_sid = "MG{"a" * 32}"')
    result = cli.invoke(root(), ["twilio", "connect"])
    assert result.exit_code == 1, result.output
    assert "messaging service MGaaaa" in result.output and "not found" in result.output
    assert urls_of(world, TOYOTA) == (URLS.sms, URLS.voice, URLS.status)


def test_rejected_credentials_are_one_line_exit_2(
    world: OpsWorld, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.load_dealer()
    monkeypatch.setattr(wiring, "build_phone_numbers", lambda s: world.numbers("wrong"))
    result = cli.invoke(root(), ["twilio", "connect"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: twilio phone number list failed")
