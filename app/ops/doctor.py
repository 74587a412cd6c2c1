"""`pitwall doctor`: is this deployment ready to text customers? Each check says what to do.

Checks, in order: the environment (public URL, secret key), the database and its
migration level, the dealer configuration (rooftops loaded, each one's settings
valid), Twilio (credentials with one read-only call; each sender number in the
account with its webhooks pointing at PITWALL_PUBLIC_URL; a Messaging Service's
inbound URL) and each rooftop's DMS (one authenticated request). Vendors are
reached only through the ports handed in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db import Database, ping, redact_url
from app.dealers.models import Rooftop
from app.migrate import schema_status
from app.ops.doctor_routing import check_keyword_handling, check_routing
from app.ops.doctor_twilio import WebhookUrls, check_numbers, check_twilio_account
from app.ops.findings import Finding
from integrations.dms.base import DmsAdapter, DmsAuthError
from integrations.dms.registry import CHECK_HINTS, validate_settings
from integrations.twilio.base import MessageGateway
from integrations.twilio.numbers import PhoneNumberDirectory

TWILIO_API = "https://api.twilio.com"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_environment(settings: Settings) -> list[Finding]:
    """PITWALL_PUBLIC_URL reachable by Twilio; PITWALL_SECRET_KEY set outside the demo."""
    found: list[Finding] = []
    host = urlsplit(settings.public_url).hostname or ""
    real_twilio = settings.twilio_api_url.rstrip("/") == TWILIO_API
    try:
        private = ipaddress.ip_address(host).is_private or ipaddress.ip_address(host).is_loopback
    except ValueError:
        private = host in ("localhost", "") or host.endswith(".local")
    if real_twilio and private:
        found.append(
            Finding(
                "public url",
                "-",
                "problem",
                f"PITWALL_PUBLIC_URL is {settings.public_url}: Twilio cannot reach it",
                "set PITWALL_PUBLIC_URL to the https address of your reverse proxy",
            )
        )
    elif real_twilio and not settings.public_url.startswith("https://"):
        found.append(
            Finding(
                "public url",
                "-",
                "warn",
                f"PITWALL_PUBLIC_URL {settings.public_url} is not https",
                "serve Pitwall behind TLS (deploy/Caddyfile) and use its https URL",
            )
        )
    else:
        found.append(Finding("public url", "-", "ok", settings.public_url))
    if settings.secret_key or settings.demo:
        found.append(Finding("secret key", "-", "ok", "PITWALL_SECRET_KEY is set"))
    else:
        found.append(
            Finding(
                "secret key",
                "-",
                "problem",
                "PITWALL_SECRET_KEY is not set",
                "set it to a long random value, e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`",
            )
        )
    return found


def check_database(settings: Settings, database: Database) -> tuple[list[Finding], bool]:
    """The database answers and is at the newest migration; (findings, usable)."""
    where = redact_url(settings.database_url)
    try:
        ping(database.engine)
    except SQLAlchemyError as exc:
        return [
            Finding(
                "database",
                "-",
                "problem",
                f"{where} does not answer: {_first_line(exc)}",
                "check PITWALL_DATABASE_URL and that the database server is running",
            )
        ], False
    found = [Finding("database", "-", "ok", f"{where} answers")]
    found.extend(_check_autovacuum(database))
    current, head = schema_status(database.engine, settings.database_url)
    if current == head:
        found.append(Finding("migrations", "-", "ok", f"at the newest revision ({head})"))
        return found, True
    found.append(
        Finding(
            "migrations",
            "-",
            "problem",
            f"database is at revision {current or 'none'}, the code expects {head}",
            "run `pitwall db upgrade` (before starting the new version)",
        )
    )
    return found, False


def _check_autovacuum(database: Database) -> list[Finding]:
    """PostgreSQL's autovacuum keeps statistics current: without it a table that grows from
    empty (a new install's texts and tasks) keeps plans made when it was empty, and every
    inbound text ends up scanning all of them (measured: 1 to 14 ms in two minutes)."""
    if database.engine.dialect.name != "postgresql":
        return []
    with database.engine.connect() as connection:
        setting = connection.exec_driver_sql("SHOW autovacuum").scalar()
    if setting == "on":
        return [Finding("autovacuum", "-", "ok", "on: statistics follow the tables")]
    return [
        Finding(
            "autovacuum",
            "-",
            "warn",
            "PostgreSQL's autovacuum is off: statistics go stale and queries slow down as "
            "tables grow",
            "set autovacuum = on in postgresql.conf (the default), or ANALYZE regularly",
        )
    ]


def load_rooftops(database: Database) -> list[Rooftop]:
    """Active rooftops, detached and ready to read outside the session."""
    with database.sessions() as session:
        rooftops = list(
            session.scalars(select(Rooftop).where(Rooftop.active.is_(True)).order_by(Rooftop.id))
        )
        session.expunge_all()
    return rooftops


def check_rooftops(rooftops: list[Rooftop]) -> tuple[list[Finding], list[Rooftop]]:
    """Each rooftop's stored settings still valid; (findings, the valid rooftops)."""
    if not rooftops:
        return [
            Finding(
                "config",
                "-",
                "problem",
                "no rooftops loaded",
                "run `pitwall config load dealer.toml`",
            )
        ], []
    found: list[Finding] = []
    valid: list[Rooftop] = []
    for rooftop in rooftops:
        try:
            cfg = rooftop.settings
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            found.append(
                Finding(
                    "config",
                    rooftop.slug,
                    "problem",
                    f"{key}: {first['msg']}",
                    "fix the dealer file and run `pitwall config load` again",
                )
            )
            continue
        problems = validate_settings(cfg.dms.kind, cfg.dms.adapter_settings())
        if problems:
            found.append(
                Finding(
                    "config",
                    rooftop.slug,
                    "problem",
                    "; ".join(problems),
                    "fix [rooftop.dms] in the dealer file and run `pitwall config load` again",
                )
            )
            continue
        found.append(Finding("config", rooftop.slug, "ok", f"{cfg.name}, DMS {cfg.dms.kind}"))
        valid.append(rooftop)
    return found, valid


def check_dms(rooftops: list[Rooftop], adapters: Callable[[Rooftop], DmsAdapter]) -> list[Finding]:
    """One authenticated request to each rooftop's DMS."""
    found: list[Finding] = []
    for rooftop in rooftops:
        kind = rooftop.settings.dms.kind
        try:
            adapters(rooftop).check()
        except DmsAuthError as exc:
            found.append(
                Finding(
                    "dms",
                    rooftop.slug,
                    "problem",
                    f"{kind} refused the credentials: {exc.detail}",
                    f"{CHECK_HINTS.get(kind, 'fix [rooftop.dms]')}; then reload the dealer file",
                )
            )
        except Exception as exc:  # the doctor reports every failure, it never crashes on one
            found.append(
                Finding(
                    "dms",
                    rooftop.slug,
                    "problem",
                    _first_line(exc),
                    "check [rooftop.dms] base_url and that the DMS is reachable from this host; "
                    + CHECK_HINTS.get(kind, ""),
                )
            )
        else:
            found.append(Finding("dms", rooftop.slug, "ok", f"{kind} answered"))
    return found


def run_doctor(
    settings: Settings,
    *,
    database: Database,
    gateway: MessageGateway,
    numbers: PhoneNumberDirectory,
    adapters: Callable[[Rooftop], DmsAdapter],
) -> list[Finding]:
    """Every check, in order; later checks are skipped when what they need is broken."""
    found = check_environment(settings)
    db_found, db_ready = check_database(settings, database)
    found += db_found
    rooftops: list[Rooftop] = []
    if db_ready:
        config_found, rooftops = check_rooftops(load_rooftops(database))
        found += config_found
    twilio_found, twilio_ok = check_twilio_account(gateway)
    found += twilio_found
    if twilio_ok and rooftops:
        urls = WebhookUrls.for_public_url(settings.public_url)
        found += check_numbers(rooftops, numbers, urls)
        found += check_routing(rooftops, numbers, urls)
    if rooftops:
        with database.sessions() as session:
            found += check_keyword_handling(session, rooftops)
    found += check_dms(rooftops, adapters)
    return found


def has_problems(findings: list[Finding]) -> bool:
    return any(f.status == "problem" for f in findings)


_MARKS: dict[str, str] = {"ok": "ok", "warn": "WARN", "problem": "PROBLEM"}


def render_table(findings: list[Finding]) -> str:
    """A fixed-width table; each problem or warning is followed by what to do."""
    headers = ("CHECK", "ROOFTOP", "STATUS", "DETAIL")
    rows = [(f.check, f.rooftop, _MARKS[f.status], f.detail) for f in findings]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  DETAIL"]
    for finding, row in zip(findings, rows, strict=True):
        cells = "  ".join(str(c).ljust(w) for c, w in zip(row[:3], widths, strict=True))
        lines.append(f"{cells}  {row[3]}")
        if finding.fix and finding.status != "ok":
            lines.append(" " * (sum(widths) + 6) + f"-> {finding.fix}")
    problems = sum(f.status == "problem" for f in findings)
    warnings = sum(f.status == "warn" for f in findings)
    if problems:
        lines.append(f"\n{problems} problem(s), {warnings} warning(s): fix the problems above.")
    else:
        lines.append(f"\nall good ({warnings} warning(s)).")
    return "\n".join(lines)


def summary(findings: list[Finding]) -> dict[str, Any]:
    """Counts by status (for JSON output and tests)."""
    return {s: sum(f.status == s for f in findings) for s in ("ok", "warn", "problem")}
