"""`pitwall demo`: the whole product in one process, on SQLite, offline.

The simulator DMS plays a busy service day at 60x speed, the Twilio sandbox
stands in for Twilio (with a phone view where you read the texts and reply as
the customer), the worker runs in a background thread, and the web app serves
the advisor board, inbox and reports.
"""

from __future__ import annotations

import secrets
import threading
import tomllib
from pathlib import Path
from typing import Any

import typer
import uvicorn

from app.config import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, Settings, parse_dealer_config
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.migrate import upgrade_to_head
from integrations.twilio.sandbox import SandboxConfig, SandboxServer

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "sample-dealer.toml"
DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("advisor@bayview.example", "advisor", ["bayview-toyota"]),
    ("director@bayview.example", "director", []),
    ("admin@bayview.example", "admin", []),
)


def demo_config_data(path: Path = SAMPLE_CONFIG) -> dict[str, Any]:
    """The sample dealer with quiet hours off, so texts arrive whatever the hour."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for rooftop in data["rooftop"]:
        rooftop["quiet_hours"] = "off"
        rooftop["dms"]["start_offset_minutes"] = 150  # open mid-morning, cars in flight
    return data


def prepare_demo(database: Database, *, source: str = "demo") -> dict[str, str]:
    """Load the demo dealer and create its users; return {email: password}."""
    from app.auth.service import create_user
    from app.dealers.service import apply_dealer_config, rooftop_by_slug

    config = parse_dealer_config(demo_config_data(), source)
    passwords: dict[str, str] = {}
    with database.transaction() as session:
        report = apply_dealer_config(session, config=config, source=source)
        from app.dealers.service import single_group

        group = single_group(session, report.group)
        for email, role, slugs in DEMO_USERS:
            rooftops = [rooftop_by_slug(session, group_id=group.id, slug=s) for s in slugs]
            password = secrets.token_urlsafe(9)
            create_user(
                session,
                group_id=group.id,
                email=email,
                password=password,
                role=role,
                rooftops=[r for r in rooftops if r is not None],
            )
            passwords[email] = password
    return passwords


def run_demo(*, port: int, sandbox_port: int, data_dir: Path) -> None:
    """Start everything and serve until Ctrl-C."""
    from app.cli_support import configure_logging
    from app.conversations.intents import warm_up
    from app.main import create_app
    from app.scheduler import run_forever
    from app.worker import Worker

    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / "pitwall-demo.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)  # a fresh day every demo
    public_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        PITWALL_DATABASE_URL=f"sqlite:///{db_path}",
        PITWALL_PUBLIC_URL=public_url,
        TWILIO_ACCOUNT_SID=DEMO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=DEMO_AUTH_TOKEN,
        PITWALL_TWILIO_API_URL=f"http://127.0.0.1:{sandbox_port}",
        PITWALL_DEMO=True,
    )
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    passwords = prepare_demo(database)

    configure_logging(settings)
    sandbox = SandboxServer(
        SandboxConfig(
            account_sid=DEMO_ACCOUNT_SID,
            auth_token=DEMO_AUTH_TOKEN,
            pitwall_public_url=public_url,
            phone_numbers=("+14155550100", "+14155550101", "+14155550200"),
        ),
        port=sandbox_port,
    ).start()
    stop = threading.Event()
    worker = Worker.from_settings(settings, database)
    worker_thread = threading.Thread(target=run_forever, args=(worker, stop), daemon=True)
    worker_thread.start()
    warm_up()  # the first text a visitor sends is answered as fast as the next
    _banner(public_url, sandbox.url, passwords)
    try:
        uvicorn.run(
            create_app(settings, database=database),
            host="127.0.0.1",
            port=port,
            proxy_headers=False,  # no proxy in the demo: nobody may choose an address
            log_config=None,
        )
    finally:
        stop.set()
        worker_thread.join(timeout=10)
        worker.close()
        sandbox.stop()


def _banner(web_url: str, phone_url: str, passwords: dict[str, str]) -> None:
    lines = [
        "",
        "Pitwall demo is running (Ctrl-C stops it).",
        f"  Web app:     {web_url}/",
        f"  Phone view:  {phone_url}/   (the customers' phones: read texts, reply, call)",
        "  Logins:",
        *(f"    {email:<28} {password}" for email, password in passwords.items()),
        "  The simulated store day runs at 60x; status texts start within a minute.",
        "",
    ]
    typer.echo("\n".join(lines))
