"""`pitwall customers erase --id N` and `pitwall consent export --rooftop SLUG > file.csv`.

The lead mounts these: `app.add_typer(customers_app, name="customers")` and
`app.add_typer(consent_app, name="consent")`.
"""

from __future__ import annotations

from typing import Annotated

import typer

customers_app = typer.Typer(help="Customers' personal data.", no_args_is_help=True)
consent_app = typer.Typer(help="The consent ledger.", no_args_is_help=True)


@customers_app.callback()
def customers() -> None:
    """Customers' personal data."""


@consent_app.callback()
def consent() -> None:
    """The consent ledger (STOP, START, DMS opt-ins) for an audit."""


@customers_app.command("erase")
def erase_command(
    customer_id: Annotated[int, typer.Option("--id", help="the customer's id (see the web app)")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a customer's personal data everywhere; reports keep anonymous counts."""
    from app.cli_support import CliError, load_settings, one_line_errors, transaction
    from app.customers.privacy import CustomerNotFound, erase_customer
    from app.db import utcnow

    @one_line_errors
    def run() -> None:
        if not yes:
            typer.confirm(
                f"Erase customer {customer_id}'s names, numbers and messages for good?",
                abort=True,
            )
        with transaction(load_settings()) as session:
            try:
                report = erase_customer(session, customer_id=customer_id, at=utcnow())
            except CustomerNotFound as exc:
                raise CliError(str(exc)) from None
        typer.echo(
            f"customer {customer_id} erased: {report.phones_deleted} phone(s) deleted, "
            f"{report.phones_kept_for_opt_out} kept (bare number) to honour an opt-out, "
            f"{report.outbound_erased} outbound and {report.inbound_erased} inbound messages, "
            f"{report.calls_erased} calls, {report.tasks_erased} tasks erased; "
            f"{report.outbound_canceled} unsent message(s) cancelled"
        )

    run()


@consent_app.command("export")
def export_command(
    rooftop: Annotated[
        str | None, typer.Option(help="rooftop slug; omitted = the whole dealer group")
    ] = None,
    group: Annotated[str | None, typer.Option(help="dealer group name")] = None,
    full_numbers: Annotated[
        bool, typer.Option("--full-numbers", help="print whole numbers (default: masked)")
    ] = False,
) -> None:
    """Print the consent ledger as CSV: at, phone, channel, purpose, action, source, detail."""
    from app.cli_support import CliError, load_settings, one_line_errors, transaction
    from app.customers.privacy import consent_csv, consent_rows
    from app.dealers.service import rooftop_by_slug, single_group

    @one_line_errors
    def run() -> None:
        with transaction(load_settings()) as session:
            dealer_group = single_group(session, group)
            found = None
            if rooftop is not None:
                found = rooftop_by_slug(session, group_id=dealer_group.id, slug=rooftop)
                if found is None:
                    raise CliError(f"no rooftop {rooftop!r} in {dealer_group.name}")
            rows = consent_rows(session, group_id=dealer_group.id, rooftop=found)
            text = consent_csv(rows, full_numbers=full_numbers)
        typer.echo(text, nl=False)

    run()
