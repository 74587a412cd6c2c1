"""Deployment files are well-formed: systemd units (systemd-analyze when present), the
Dockerfile, compose.yaml, the proxies, and the guide names every setting."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.ops.alerts import AlertSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DOCKER_INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def test_dockerfile_is_well_formed() -> None:
    found = dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
    names = [name for name, _ in found]
    assert set(names) <= DOCKER_INSTRUCTIONS
    assert names[0] == "FROM" and "python:3.11" in found[0][1]
    users = [args for name, args in found if name == "USER"]
    assert users and users[-1] != "root"
    assert "HEALTHCHECK" in names and "/healthz" in dict(found)["HEALTHCHECK"]
    for name, args in found:
        if name == "COPY" and not args.startswith("--"):
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    assert dict(found)["CMD"].startswith('["pitwall", "serve"')


def test_compose_file_runs_postgres_migrate_web_and_two_workers() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed in this venv")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "web", "worker"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["pitwall", "db", "upgrade"]
    for name in ("web", "worker"):
        wanted = {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["migrate"] == wanted


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_units_verify(tmp_path: Path) -> None:
    pitwall = Path(sys.executable).with_name("pitwall")
    executable = pitwall if pitwall.exists() else Path(sys.executable)
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/pitwall/.venv/bin/pitwall", str(executable))
        # The environment file exists only on a real host.
        text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 2
    done = subprocess.run(
        ["systemd-analyze", "verify", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_proxies_terminate_tls_forward_headers_and_hide_metrics() -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy" in caddy and "respond /metrics 404" in caddy
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "listen 443 ssl" in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    assert re.search(r"location = /metrics \{ return 404; \}", nginx)
    assert nginx.count("{") == nginx.count("}")


def test_the_guide_names_every_setting_and_command() -> None:
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    example = (DEPLOY / "pitwall.env.example").read_text()
    names = [
        str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        for field in AlertSettings.model_fields.values()
    ]
    for name in [*names, "PITWALL_METRICS_TOKEN", "PITWALL_LOG_FORMAT", "PITWALL_PUBLIC_URL"]:
        assert name in guide, name
        assert name in example, name
    for command in (
        "make demo",
        "pitwall doctor",
        "pitwall twilio connect",
        "pitwall db upgrade",
        "pitwall backup",
        "pitwall restore",
        "pg_dump",
    ):
        assert command in guide, command
