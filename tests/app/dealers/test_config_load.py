"""Loading a dealer's TOML: validated, idempotent, all-or-nothing, errors that name the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import ConfigError, load_dealer_config
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from tests.support import SAMPLE_CONFIG, load_sample_dealer

BASE = SAMPLE_CONFIG.read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dealer.toml"
    path.write_text(text)
    return path


def load(database: Database, path: Path) -> None:
    config = load_dealer_config(path)
    with database.transaction() as session:
        apply_dealer_config(session, config=config, source=str(path))


def error_for(tmp_path: Path, text: str, database: Database | None = None) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        if database is None:
            load_dealer_config(path)
        else:
            load(database, path)
    assert caught.value.source == str(path)
    return caught.value


def test_sample_config_loads_two_rooftops_with_e164_numbers(database: Database) -> None:
    report = load_sample_dealer(database)
    assert report.created == ["bayview-toyota", "bayview-ford"]
    with database.sessions() as session:
        toyota = session.scalar(select(Rooftop).where(Rooftop.slug == "bayview-toyota"))
        assert toyota is not None
        assert toyota.sms_from == "+14155550100"
        assert toyota.settings.status_map["READY"] == "ready_for_pickup"
        assert toyota.settings.quiet.enabled


def test_loading_the_same_file_twice_changes_nothing(database: Database) -> None:
    load_sample_dealer(database)
    with database.sessions() as session:
        before = [
            (r.id, r.updated_at) for r in session.scalars(select(Rooftop).order_by(Rooftop.id))
        ]
    report = load_sample_dealer(database)
    assert not report.changed
    assert report.unchanged == ["bayview-toyota", "bayview-ford"]
    with database.sessions() as session:
        after = [
            (r.id, r.updated_at) for r in session.scalars(select(Rooftop).order_by(Rooftop.id))
        ]
    assert before == after


def test_a_changed_file_updates_in_place(database: Database, tmp_path: Path) -> None:
    load_sample_dealer(database)
    load(
        database,
        write(tmp_path, BASE.replace('name = "Bayview Ford"', 'name = "Bayview Ford Lincoln"')),
    )
    with database.sessions() as session:
        names = session.scalars(select(Rooftop.name).order_by(Rooftop.id)).all()
        assert names == ["Bayview Toyota", "Bayview Ford Lincoln"]
        assert session.scalar(select(func.count()).select_from(DealerGroup)) == 1


def test_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    error = error_for(tmp_path, BASE.replace('language = "en"', 'language = "en"\ncolour = "red"'))
    assert error.key == "rooftop[bayview-toyota].colour"
    assert error.problem == "unknown key"


def test_unknown_dms_key_is_an_error(tmp_path: Path, database: Database) -> None:
    error = error_for(
        tmp_path, BASE.replace("ro_count = 40", "ro_count = 40\nbase_ur1 = 'x'"), database
    )
    assert error.key == "rooftop[bayview-toyota].dms.base_ur1"
    assert "unknown key" in error.problem


def test_missing_dms_setting_is_an_error(tmp_path: Path, database: Database) -> None:
    text = BASE.replace('kind = "simulator"\nseed = 1', 'kind = "rest"\ntoken = "t"', 1).replace(
        "speed = 60.0\nro_count = 40\n", "", 1
    )
    error = error_for(tmp_path, text, database)
    assert error.key == "rooftop[bayview-toyota].dms.base_url"
    assert "missing" in error.problem


def test_time_zone_is_checked_against_iana(tmp_path: Path) -> None:
    error = error_for(tmp_path, BASE.replace("America/Los_Angeles", "Pacific/Nowhere", 1))
    assert error.key == "rooftop[bayview-toyota].timezone"
    assert "IANA" in error.problem


def test_phone_numbers_are_checked(tmp_path: Path) -> None:
    error = error_for(
        tmp_path, BASE.replace('sms_from = "+14155550100"', 'sms_from = "555-CALL-NOW"')
    )
    assert error.key == "rooftop[bayview-toyota].sms_from"
    assert "phone number" in error.problem


def test_numbers_written_locally_use_the_group_region(database: Database, tmp_path: Path) -> None:
    load(database, write(tmp_path, BASE.replace('"+14155550200"', '"(415) 555-0200"')))
    with database.sessions() as session:
        assert (
            session.scalar(select(Rooftop.sms_from).where(Rooftop.slug == "bayview-ford"))
            == "+14155550200"
        )


def test_unknown_stage_in_status_map_is_an_error(tmp_path: Path) -> None:
    error = error_for(tmp_path, BASE.replace('"QC" = "quality_check"', '"QC" = "polishing"', 1))
    assert error.key == "rooftop[bayview-toyota].status_map.QC"


def test_bad_quiet_hours_and_syntax_errors_are_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, BASE.replace('"21:00-08:00"', '"9pm-8am"', 1)).key == (
        "rooftop[bayview-toyota].quiet_hours"
    )
    assert error_for(tmp_path, BASE + "\n[[rooftop\n").key == "(syntax)"


def test_a_file_that_is_not_utf8_is_a_one_line_error_naming_the_file(
    database_url: str, tmp_path: Path
) -> None:
    """Found by probing: a Latin-1 file (an accented store name) printed a traceback."""
    latin1 = tmp_path / "dealer.toml"
    latin1.write_bytes(BASE.replace("Bayview Ford", "Bayview Peña Ford").encode("latin-1"))
    done = subprocess.run(
        [sys.executable, "-m", "app", "config", "load", str(latin1)],
        env={**os.environ, "PITWALL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {latin1}: (file): is not UTF-8 text (byte 0xf1 at offset ")
    assert line.endswith("save it as UTF-8")


def test_an_error_in_the_second_rooftop_loads_nothing(database: Database, tmp_path: Path) -> None:
    text = BASE.replace('sms_from = "+14155550200"', 'sms_from = "+14155550100"')
    error = error_for(tmp_path, text, database)
    assert error.key == "rooftop[bayview-ford].sms_from"
    assert "already used" in error.problem
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Rooftop)) == 0
        assert session.scalar(select(func.count()).select_from(DealerGroup)) == 0


def test_rooftop_dropped_from_the_file_is_deactivated_not_deleted(
    database: Database, tmp_path: Path
) -> None:
    load_sample_dealer(database)
    only_toyota = BASE.split('[[rooftop]]\nslug = "bayview-ford"')[0]
    load(database, write(tmp_path, only_toyota))
    with database.sessions() as session:
        ford = session.scalar(select(Rooftop).where(Rooftop.slug == "bayview-ford"))
        assert ford is not None and not ford.active
