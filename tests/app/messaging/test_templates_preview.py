"""Every message template renders against the preview's sample data, in every language."""

from __future__ import annotations

import os
import subprocess
import sys

from app.messaging.cli import preview_all, sample_rooftop


def test_every_template_renders_without_undefined_variables() -> None:
    previews = preview_all(sample_rooftop())
    broken = [f"{p.name}.{p.language}: {p.body}" for p in previews if "template error" in p.body]
    assert broken == []
    names = {p.name for p in previews}
    assert {"checked_in", "ready_for_pickup", "followup", "answer_status", "voice_status"} <= names
    for p in previews:
        assert p.segments >= 1 and p.encoding in ("GSM-7", "UCS-2")


def test_preview_command_prints_segments_and_encoding(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "templates", "preview", "--language", "es"],
        env={**os.environ, "PITWALL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "== ready_for_pickup.es" in done.stdout
    assert "UCS-2" in done.stdout or "GSM-7" in done.stdout
