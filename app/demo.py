"""`pitwall demo`: the whole product in one process, on SQLite, offline.

The simulator DMS plays busy service days at 60x speed, one after another for as
long as the demo runs, on the real clock (a live timeline: a planned hour of shop
work takes a real minute, every time shown is real). Declined work is followed up
at the close and some customers come back for it minutes later, so the recovery
report fills within minutes. The Twilio sandbox stands in for Twilio (with a phone
view where you read the texts and reply or call as the customer), the worker runs
in a background thread, and the web app serves the board, inbox and reports.

Store hours: Bayview Toyota is open around the clock in the demo, so a call can
reach the status menu and the service desk (and go unanswered: a missed call) at
any hour; Bayview Ford keeps its real hours and is closed for holidays today and
tomorrow, so a call or text there shows the after-hours path at any hour. Now and
then a simulated customer texts, calls, approves or opts out on their own
(app/demo_customers.py), so the inbox and the reports fill even if nobody clicks.
"""

from __future__ import annotations

import secrets
import threading
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
import uvicorn

from app.config import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, Settings, parse_dealer_config
from app.db import make_engine, make_session_factory
from app.demo_customers import DemoCustomers, Stores
from app.deps import Database
from app.migrate import upgrade_to_head
from integrations.twilio.sandbox import SandboxConfig, SandboxServer

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "sample-dealer.toml"
DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("advisor@bayview.example", "advisor", ["bayview-toyota"]),
    ("director@bayview.example", "director", []),
    ("admin@bayview.example", "admin", []),
)


OPEN_ALL_DAY = "Mon-Sun 0:00-24:00"
# The simulator on the real clock, days rolling over every ten minutes, returns for declined work.
DEMO_DMS = {
    "start_offset_minutes": 150,  # open mid-morning, cars in flight
    "live": True,
    "day_minutes": 600,
    "return_percent": 40,
}
DEMO_FOLLOWUP_DAYS = [0, 3, 10]  # the first touch at the close: within minutes in the demo
# A demo customer lives a shop day in minutes (check-in, approval, parts, ready, follow-up,
# a return visit): a real store's cap of 3 texts a day would hold the follow-up till tomorrow.
DEMO_DAILY_CAP = 8
# Promised times are minutes away on the live timeline: warn when one is missed, not
# half an hour ahead (every RO would be "running late"); approvals are slow after a minute.
DEMO_WATCHDOG = {"promise_margin_minutes": 0, "stage_alert_minutes": {"awaiting_approval": 1}}
CLOSED_ROOFTOP = "bayview-ford"


def demo_holidays(timezone: str, now: datetime) -> list[date]:
    """Today and tomorrow in the rooftop's zone: closed whatever the hour the demo starts."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return [today, today + timedelta(days=1)]


def demo_config_data(path: Path = SAMPLE_CONFIG, *, now: datetime | None = None) -> dict[str, Any]:
    """The sample dealer made for a demo that runs all day and night.

    Quiet hours off (texts arrive whatever the hour), the simulator on a live timeline,
    follow-ups at the close, one rooftop open around the clock and one closed (holidays).
    """
    now = now or datetime.now(UTC)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for rooftop in data["rooftop"]:
        rooftop["quiet_hours"] = "off"
        rooftop["followup_days"] = list(DEMO_FOLLOWUP_DAYS)
        rooftop["daily_cap"] = DEMO_DAILY_CAP
        rooftop.update(DEMO_WATCHDOG)
        rooftop["dms"].update(DEMO_DMS)
        if rooftop["slug"] == CLOSED_ROOFTOP:
            rooftop["holidays"] = demo_holidays(rooftop["timezone"], now)
            # Its number sits behind Advanced Opt-Out (OptOutType on STOP/START/HELP); the
            # other store's is a plain long code (Twilio answers and says nothing).
            rooftop["carrier_keywords"] = "advanced"
        else:
            rooftop["store_hours"] = OPEN_ALL_DAY
            rooftop.pop("holidays", None)
    return data


def demo_stores(path: Path = SAMPLE_CONFIG) -> Stores:
    """The store the demo keeps open around the clock, and the one closed for holidays."""
    rooftops = {r["slug"]: r for r in tomllib.loads(path.read_text(encoding="utf-8"))["rooftop"]}
    closed = rooftops.pop(CLOSED_ROOFTOP)
    open_one = next(iter(rooftops.values()))
    return Stores(open_one["sms_from"], open_one["name"], closed["sms_from"], closed["name"])


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
            advanced_opt_out=frozenset({demo_stores().closed_number}),
        ),
        port=sandbox_port,
    ).start()
    stop = threading.Event()
    worker = Worker.from_settings(settings, database)
    worker_thread = threading.Thread(target=run_forever, args=(worker, stop), daemon=True)
    worker_thread.start()
    warm_up()  # the first text a visitor sends is answered as fast as the next
    customers = DemoCustomers(sandbox.url, demo_stores()).start()
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
        customers.stop()
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
        "  Shop days run at 60x on the real clock, one after another; status texts start",
        "  within a minute, follow-ups and recovered work within minutes.",
        "  Bayview Toyota is open 24 hours (call it: press 1, leave it unanswered for a",
        "  missed call); Bayview Ford is closed for holidays today and tomorrow.",
        "  Text STOP, START or HELP: Twilio answers on Toyota's plain long code, and on",
        "  Ford's Advanced Opt-Out number (which tells Pitwall so); Pitwall answers neither.",
        "  Simulated customers text, call, approve and opt out now and then on their own.",
        "",
    ]
    typer.echo("\n".join(lines))
