"""`pitwall doctor` against the Twilio sandbox and the DMS fakes: each failure named, exit 1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app import wiring
from app.ops.doctor import Finding, has_problems, render_table, run_doctor
from app.repair_orders.jobs import AdapterCache
from tests.app.ops.conftest import FORD, TOYOTA, OpsWorld


def doctor(world: OpsWorld, *, auth_token: str | None = None) -> list[Finding]:
    gateway = world.gateway(auth_token) if auth_token else world.gateway()
    numbers = world.numbers(auth_token) if auth_token else world.numbers()
    adapters = AdapterCache()
    try:
        return run_doctor(
            world.settings,
            database=world.database,
            gateway=gateway,
            numbers=numbers,
            adapters=adapters,
        )
    finally:
        adapters.close()
        gateway.close()
        numbers.close()


def problems(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.check, f.rooftop) for f in findings if f.status == "problem"]


def test_a_connected_deployment_has_no_problems(world: OpsWorld) -> None:
    world.load_dealer()
    world.point_all_numbers_at_pitwall()
    findings = doctor(world)
    assert problems(findings) == []
    checks = {(f.check, f.rooftop) for f in findings}
    assert {
        ("database", "-"),
        ("migrations", "-"),
        ("config", "bayview-toyota"),
        ("twilio", "-"),
        ("number", "bayview-ford"),
        ("webhooks", "bayview-toyota"),
        ("dms", "bayview-toyota"),
        ("dms", "bayview-ford"),
    } <= checks
    table = render_table(findings)
    assert "all good" in table and "PROBLEM" not in table


def test_rejected_twilio_token_is_named_and_numbers_are_not_checked(world: OpsWorld) -> None:
    world.load_dealer()
    findings = doctor(world, auth_token="not-the-token")
    twilio = next(f for f in findings if f.check == "twilio")
    assert twilio.status == "problem"
    assert "rejected the credentials" in twilio.detail
    assert "TWILIO_AUTH_TOKEN" in twilio.fix
    assert not any(f.check in ("number", "webhooks") for f in findings)


def test_a_number_not_in_the_account(world: OpsWorld) -> None:
    world.load_dealer()
    world.point_all_numbers_at_pitwall()
    ford = next(n for n in world.sandbox.state.list_numbers() if n.phone_number == FORD)
    with world.sandbox.state._lock:  # the account gives the number up
        del world.sandbox.state.numbers[ford.sid]
    findings = doctor(world)
    assert problems(findings) == [("number", "bayview-ford")]
    finding = next(f for f in findings if f.status == "problem")
    assert FORD in finding.detail and "not a phone number of this Twilio account" in finding.detail


def test_webhooks_pointing_elsewhere(world: OpsWorld) -> None:
    world.load_dealer()
    world.point_all_numbers_at_pitwall()
    toyota = next(n for n in world.sandbox.state.list_numbers() if n.phone_number == TOYOTA)
    world.sandbox.state.update_number(toyota.sid, {"sms_url": "https://old-vendor.example/sms"})
    findings = doctor(world)
    assert problems(findings) == [("webhooks", "bayview-toyota")]
    finding = next(f for f in findings if f.status == "problem")
    assert "SmsUrl is https://old-vendor.example/sms" in finding.detail
    assert "pitwall twilio connect" in finding.fix


def test_dms_that_refuses_the_token(world: OpsWorld) -> None:
    world.load_dealer(toyota_token="expired-token")
    world.point_all_numbers_at_pitwall()
    findings = doctor(world)
    assert problems(findings) == [("dms", "bayview-toyota")]
    finding = next(f for f in findings if f.status == "problem")
    assert "refused the credentials" in finding.detail


@pytest.fixture
def behind_on_migrations(world: OpsWorld) -> Iterator[None]:
    with world.database.engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = 'an_older_one'"))
    yield
    with world.database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})


def test_database_behind_on_migrations(world: OpsWorld, behind_on_migrations: None) -> None:
    world.load_dealer()
    findings = doctor(world)
    migrations = next(f for f in findings if f.check == "migrations")
    assert migrations.status == "problem"
    assert "an_older_one" in migrations.detail and "pitwall db upgrade" in migrations.fix


def test_no_rooftops_loaded(world: OpsWorld) -> None:
    findings = doctor(world)
    assert ("config", "-") in problems(findings)
    assert has_problems(findings)


def test_the_command_prints_the_table_and_exits_1_on_a_problem(
    world: OpsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ops.cli import doctor_command

    world.load_dealer(toyota_token="expired-token")
    world.point_all_numbers_at_pitwall()
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(wiring, "build_phone_numbers", lambda s: world.numbers(), raising=False)
    import typer

    app = typer.Typer()
    app.command()(doctor_command)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1, result.output
    assert "PROBLEM" in result.output and "bayview-toyota" in result.output
    assert "1 problem(s)" in result.output

    world.load_dealer()
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    assert "all good" in result.output


@pytest.mark.postgres_only
def test_postgres_autovacuum_is_reported(world: OpsWorld) -> None:
    """Off, statistics go stale and plans made for empty tables stay: a warning, with the fix."""
    world.load_dealer()
    with world.database.engine.connect() as connection:
        setting = connection.execute(text("SHOW autovacuum")).scalar()
    (found,) = [f for f in doctor(world) if f.check == "autovacuum"]
    assert found.status == ("ok" if setting == "on" else "warn")
    assert found.status == "ok" or "autovacuum = on" in found.fix
