"""The `pitwall` command line (DESIGN.md's CLI contract).

Every command is a unit of work: it opens its own transaction and commits once.
Expected failures (bad settings, bad config, unreachable database) print one line
and exit 2; a traceback means a bug.
"""

from __future__ import annotations

import gc
import getpass
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_support import (
    CliError,
    configure_logging,
    load_settings,
    one_line_errors,
    open_database,
    transaction,
)

app = typer.Typer(
    name="pitwall",
    help="Service-status texts for dealership service departments.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Dealer configuration.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
users_app = typer.Typer(help="Logins for the web app.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_app, name="users")


# A worker's poll allocates some twenty container objects per repair order (the record,
# its customer, lines, hashes' tuples, the row it writes), nearly all freed by reference
# counting. At Python's default threshold (700) a page of 1,000 ROs still paid for some
# thirty young collections. Alternating polls of 2,500 changed ROs in one process, the
# median poll took 313 ms at 10,000 and 292 at 50,000 instead of 351 (the best polls
# barely moved: collections only add to the unlucky ones). Only cyclic garbage
# waits for a collection: after 100,000 dispatched messages a worker held 125 MB at
# 10,000 against 122 MB at 700 and 136 MB at 50,000, and its send rate did not move.
WORKER_YOUNG_GC_THRESHOLD = 10_000


def freeze_startup_objects(*, young_threshold: int | None = None) -> None:
    """Move everything built at startup (the app, its routes, SQLAlchemy's mappers, the
    templates: ~150,000 objects) out of the garbage collector's sight.

    A full collection walked them all: an ~85 ms pause of every request in flight,
    every few thousand requests. Frozen, the same collection takes a few milliseconds.
    `young_threshold` (the worker's `WORKER_YOUNG_GC_THRESHOLD`) makes young collections
    rarer; the web process keeps the default, whose collections are the shortest.
    """
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)


def prepare_worker_gc() -> None:
    """The collector as `pitwall worker` sets it before its first tick (the benches too)."""
    freeze_startup_objects(young_threshold=WORKER_YOUNG_GC_THRESHOLD)


# --- db -------------------------------------------------------------------------


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Migrate PITWALL_DATABASE_URL to the newest schema (alembic upgrade head)."""
    from app.migrate import upgrade_to_head

    settings = load_settings()
    open_database(settings).engine.dispose()
    upgrade_to_head(settings.database_url)
    from app.db import redact_url

    typer.echo(f"database {redact_url(settings.database_url)} is at the newest schema")


# --- config ---------------------------------------------------------------------


@config_app.command("load")
@one_line_errors
def config_load(file: Annotated[Path, typer.Argument(help="dealer TOML file")]) -> None:
    """Create or update the dealer group and rooftops from FILE (idempotent)."""
    from app.config import load_dealer_config
    from app.dealers.service import apply_dealer_config

    config = load_dealer_config(file)
    settings = load_settings()
    with transaction(settings) as session:
        report = apply_dealer_config(session, config=config, source=str(file))
    typer.echo(f"group {report.group!r}: " + _describe(report))


@config_app.command("export")
@one_line_errors
def config_export(
    file: Annotated[
        Path | None, typer.Argument(help="where to write the TOML (default: standard output)")
    ] = None,
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
) -> None:
    """Write the configuration in use (admin edits included) as a file `config load` accepts."""
    from app.dealers.export import dealer_toml
    from app.dealers.service import single_group

    settings = load_settings()
    with transaction(settings) as session:
        text = dealer_toml(session, group=single_group(session, group))
    if file is None:
        typer.echo(text, nl=False)
        return
    file.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {file}")


def _describe(report: Any) -> str:
    parts = [
        f"{label} {', '.join(slugs)}"
        for label, slugs in (
            ("created", report.created),
            ("updated", report.updated),
            ("deactivated", report.deactivated),
            ("unchanged", report.unchanged),
        )
        if slugs
    ]
    return "; ".join(parts) if parts else "nothing to do"


# --- serve / worker / demo --------------------------------------------------------


@app.command()
@one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the web app: pages, JSON API and Twilio webhooks."""
    import uvicorn

    from app.conversations.intents import warm_up
    from app.main import create_app

    settings = load_settings()
    settings.require_secret_key()
    settings.require_twilio_credentials()
    database = open_database(settings)
    configure_logging(settings)
    application = create_app(settings, database=database)
    warm_up()
    freeze_startup_objects()
    uvicorn.run(
        application,
        host=host,
        port=port,
        proxy_headers=False,  # the app believes X-Forwarded-For per FORWARDED_ALLOW_IPS
        log_config=None,
    )


@app.command()
@one_line_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="run what is due now, then exit")] = False,
) -> None:
    """Poll DMSes, send due messages, run follow-ups and watchdogs."""
    from app.scheduler import run_forever
    from app.worker import Worker

    settings = load_settings()
    settings.require_twilio_credentials()
    database = open_database(settings)
    configure_logging(settings)
    with Worker.from_settings(settings, database) as runner:
        # `--once` too: a first poll of 1,000 new ROs spent 0.8 s of its 3 s in collections
        # walking the startup objects (0.1 s frozen, for 60 ms of freezing).
        prepare_worker_gc()
        if once:
            report = runner.run_once()
            typer.echo(report.summary())
            return
        run_forever(runner)


@app.command()
@one_line_errors
def demo(
    port: Annotated[int, typer.Option(help="web app port")] = 8000,
    sandbox_port: Annotated[int, typer.Option(help="Twilio sandbox port")] = 8001,
    data_dir: Annotated[Path, typer.Option(help="where the demo database lives")] = Path(
        "demo-data"
    ),
) -> None:
    """Everything in one process on SQLite: simulator DMS, Twilio sandbox, web app, worker."""
    from app.demo import run_demo

    run_demo(port=port, sandbox_port=sandbox_port, data_dir=data_dir)


# --- tokens / users -----------------------------------------------------------------


@tokens_app.command("create")
@one_line_errors
def tokens_create(
    name: Annotated[str, typer.Option(help="what the token is for")],
    role: Annotated[str, typer.Option(help="advisor | director | admin")],
    rooftop: Annotated[list[str] | None, typer.Option(help="rooftop slug (advisors)")] = None,
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
) -> None:
    """Print a new API token (the last line of output). Only its hash is stored."""
    from app.auth.service import create_api_token
    from app.dealers.service import single_group

    settings = load_settings()
    with transaction(settings) as session:
        dealer_group = single_group(session, group)
        rooftops = _rooftops(session, dealer_group.id, rooftop or [])
        if role == "advisor" and not rooftops:
            raise CliError("an advisor token needs at least one --rooftop")
        try:
            token = create_api_token(
                session, group_id=dealer_group.id, name=name, role=role, rooftops=rooftops
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
    typer.echo(
        f"token {name!r} ({role}) for {dealer_group.name}; store it now, it is not shown again:"
    )
    typer.echo(token)


@users_app.command("create")
@one_line_errors
def users_create(
    email: Annotated[str, typer.Option(help="login e-mail")],
    role: Annotated[str, typer.Option(help="advisor | director | admin")],
    rooftop: Annotated[list[str] | None, typer.Option(help="rooftop slug (advisors)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
    name: Annotated[str | None, typer.Option(help="name colleagues read, e.g. 'Dana Ruiz'")] = None,
    dms_advisor_id: Annotated[
        str | None, typer.Option(help="the advisor's id in the DMS (an RO's advisor.id)")
    ] = None,
) -> None:
    """Create a login. Advisors see only the rooftops named with --rooftop."""
    from app.auth.service import create_user
    from app.dealers.service import single_group

    password = _read_password(password_stdin)
    settings = load_settings()
    with transaction(settings) as session:
        dealer_group = single_group(session, group)
        rooftops = _rooftops(session, dealer_group.id, rooftop or [])
        if role == "advisor" and not rooftops:
            raise CliError("an advisor needs at least one --rooftop SLUG")
        try:
            user = create_user(
                session,
                group_id=dealer_group.id,
                email=email,
                password=password,
                role=role,
                rooftops=rooftops,
                name=name,
                dms_advisor_id=dms_advisor_id,
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
    typer.echo(f"user {user.email} ({user.role}) created in {dealer_group.name}")


@users_app.command("deactivate")
@one_line_errors
def users_deactivate(
    email: Annotated[str, typer.Argument(help="login e-mail")],
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
) -> None:
    """Stop a login and end all its sessions at once."""
    from app.auth.service import deactivate_user
    from app.db import utcnow

    settings = load_settings()
    with transaction(settings) as session:
        user = _user(session, email, group)
        if not deactivate_user(session, group_id=user.group_id, user_id=user.id, now=utcnow()):
            raise CliError(f"{email} is already deactivated")
    typer.echo(f"user {email} deactivated; their sessions are ended")


@users_app.command("set-password")
@one_line_errors
def users_set_password(
    email: Annotated[str, typer.Argument(help="login e-mail")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
) -> None:
    """Give a login a new password; every session it had is ended."""
    from app.auth.service import set_password
    from app.db import utcnow

    password = _read_password(password_stdin)
    settings = load_settings()
    with transaction(settings) as session:
        user = _user(session, email, group)
        try:
            ended = set_password(session, user=user, password=password, now=utcnow())
        except ValueError as exc:
            raise CliError(str(exc)) from None
    typer.echo(f"password of {email} changed; {ended} session(s) ended")


def _user(session: Any, email: str, group: str | None) -> Any:
    from sqlalchemy import func, select

    from app.auth.models import User
    from app.dealers.service import single_group

    dealer_group = single_group(session, group)
    user = session.scalar(
        select(User).where(
            User.group_id == dealer_group.id, func.lower(User.email) == email.strip().lower()
        )
    )
    if user is None:
        raise CliError(f"no user {email!r} in {dealer_group.name}")
    return user


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise CliError("the two passwords differ")
    return first


def _rooftops(session: Any, group_id: int, slugs: list[str]) -> list[Any]:
    from app.dealers.service import rooftop_by_slug

    found = []
    for slug in slugs:
        rooftop = rooftop_by_slug(session, group_id=group_id, slug=slug)
        if rooftop is None:
            raise CliError(f"no rooftop {slug!r} in this group")
        found.append(rooftop)
    return found


def _add_domain_commands() -> None:
    from app.conversations.cli import intents_app
    from app.customers.cli import consent_app, customers_app
    from app.messaging.cli import templates_app
    from app.ops.cli import backup_command, doctor_command, restore_command, twilio_app

    app.add_typer(templates_app, name="templates")
    app.add_typer(customers_app, name="customers")
    app.add_typer(consent_app, name="consent")
    app.add_typer(intents_app, name="intents")
    app.command("doctor")(doctor_command)
    app.add_typer(twilio_app, name="twilio")
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


_add_domain_commands()


def main() -> None:
    """Console-script entry point."""
    app()
