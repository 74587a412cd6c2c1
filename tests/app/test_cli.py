"""The `pitwall` CLI: commands do what DESIGN.md says; expected failures are one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from app.auth.models import ApiToken, User
from app.auth.passwords import verify_password
from app.auth.service import hash_token
from app.deps import Database
from tests.support import SAMPLE_CONFIG


def run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_load_then_token_create(database_url: str, database: Database) -> None:
    env = {"PITWALL_DATABASE_URL": database_url}
    loaded = run(["config", "load", str(SAMPLE_CONFIG)], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "created bayview-toyota, bayview-ford" in loaded.stdout
    again = run(["config", "load", str(SAMPLE_CONFIG)], env)
    assert "unchanged bayview-toyota, bayview-ford" in again.stdout

    created = run(["tokens", "create", "--name", "bi", "--role", "director"], env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    with database.sessions() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        assert row is not None and row.role == "director"


def test_bad_config_file_is_one_line_exit_2(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SAMPLE_CONFIG.read_text().replace('language = "en"', 'langauge = "en"'))
    done = run(["config", "load", str(bad)], {"PITWALL_DATABASE_URL": database_url})
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {bad}: rooftop[bayview-toyota].langauge: unknown key")


def test_unreachable_database_is_one_line_exit_2(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    done = run(["db", "upgrade"], {"PITWALL_DATABASE_URL": url})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the database at")
    assert "secret" not in done.stderr  # passwords are redacted


def test_wrong_database_url_is_one_line_exit_2() -> None:
    done = run(["db", "upgrade"], {"PITWALL_DATABASE_URL": "mysql://x"})
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: PITWALL_DATABASE_URL:")
    assert "Traceback" not in done.stderr


def test_serve_without_secret_key_is_one_line_exit_2(database_url: str) -> None:
    env = {"PITWALL_DATABASE_URL": database_url}
    env_without_key = {k: v for k, v in os.environ.items() if k != "PITWALL_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        env={**env_without_key, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PITWALL_SECRET_KEY: is required outside the demo" in done.stderr


def test_users_create_deactivate_and_set_password(database_url: str, database: Database) -> None:
    env = {"PITWALL_DATABASE_URL": database_url}
    assert run(["config", "load", str(SAMPLE_CONFIG)], env).returncode == 0
    created = run(
        ["users", "create", "--email", "dana@bayview.example", "--role", "advisor",
         "--rooftop", "bayview-toyota", "--password-stdin"],
        env,
        stdin="correct horse battery\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    short = run(["users", "set-password", "dana@bayview.example", "--password-stdin"], env, "x\n")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    changed = run(
        ["users", "set-password", "Dana@Bayview.example", "--password-stdin"],
        env,
        stdin="another long passphrase\n",
    )
    assert changed.returncode == 0, changed.stderr
    assert run(["users", "deactivate", "dana@bayview.example"], env).returncode == 0
    again = run(["users", "deactivate", "dana@bayview.example"], env)
    assert again.returncode == 2 and "already deactivated" in again.stderr
    missing = run(["users", "deactivate", "nobody@bayview.example"], env)
    assert missing.returncode == 2 and "no user 'nobody@bayview.example'" in missing.stderr
    with database.sessions() as session:
        user = session.scalar(select(User).where(User.email == "dana@bayview.example"))
        assert user is not None and not user.active
        assert verify_password(user.password_hash, "another long passphrase")


def test_db_upgrade_is_idempotent(database_url: str) -> None:
    env = {"PITWALL_DATABASE_URL": database_url}
    for _ in range(2):
        done = run(["db", "upgrade"], env)
        assert done.returncode == 0, done.stderr
        assert "newest schema" in done.stdout


def test_intents_classify_writes_one_json_object_per_input_line() -> None:
    texts = ["is my car ready?", "Stop texting me", "", "ok thanks", "mi carro ya está?"]
    done = run(["intents", "classify"], stdin="\n".join(texts) + "\n")
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["text"] for a in answers] == texts
    assert all({"text", "intent", "language", "confidence"} <= a.keys() for a in answers)
    assert [a["intent"] for a in answers][:3] == ["status_question", "opt_out", "unsure"]
    assert answers[3]["intent"] != "approve" and answers[4]["language"] == "es"
    assert all(0.0 <= a["confidence"] <= 1.0 for a in answers)


def test_intents_classify_refuses_an_unknown_context_in_one_line() -> None:
    done = run(["intents", "classify", "--reply-to", "nonsense"], stdin="yes\n")
    assert done.returncode == 2 and done.stderr.startswith("error: --reply-to must be one of")


def test_serve_and_worker_refuse_the_demos_public_twilio_token(database_url: str) -> None:
    """Issue 27 point 6: a deployment that forgot TWILIO_AUTH_TOKEN accepted forged webhooks."""
    env = {
        "PITWALL_DATABASE_URL": database_url,
        "PITWALL_SECRET_KEY": "a-real-secret",
        "TWILIO_ACCOUNT_SID": "AC" + "5" * 32,
        "PITWALL_TWILIO_API_URL": "https://api.twilio.com",
    }
    cleared = {key: value for key, value in os.environ.items() if key != "TWILIO_AUTH_TOKEN"}
    for command in (["serve", "--port", "0"], ["worker", "--once"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *command],
            env={**cleared, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "TWILIO_AUTH_TOKEN" in done.stderr and "demo's public value" in done.stderr
    # With Twilio a sandbox on this host (tests, a local trial) the demo token is fine.
    local = run(
        ["worker", "--once"],
        {**env, "PITWALL_TWILIO_API_URL": "http://127.0.0.1:9", "TWILIO_AUTH_TOKEN": ""},
    )
    assert "demo's public value" not in local.stderr
