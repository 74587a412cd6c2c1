"""`pitwall intents ...`: classify texts, train and grade the model, export advisors' corrections.

app/cli.py mounts `intents_app` as `pitwall intents`.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from typing import Annotated

import typer

from app.cli_support import CliError, load_settings, one_line_errors, transaction

intents_app = typer.Typer(
    help="What customers' texts mean: the trained intent model.", no_args_is_help=True
)


@intents_app.command("classify")
@one_line_errors
def classify_command(
    reply_to: Annotated[
        str,
        typer.Option(
            help="the kind of message the texts answer (none, approval_request, ready, ...)"
        ),
    ] = "none",
) -> None:
    """One text per line on stdin -> one JSON object per line on stdout, in order."""
    from app.conversations.intent_model import REPLY_TO
    from app.conversations.intents import classify

    if reply_to not in REPLY_TO:
        raise CliError(f"--reply-to must be one of {', '.join(REPLY_TO)}")
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        found = classify(text, reply_to=reply_to)
        answer = {
            "text": text,
            "intent": found.name,
            "language": found.language,
            "confidence": round(found.confidence, 4),
            "label": found.label,
            "guesses": [[label, round(p, 4)] for label, p in found.guesses],
        }
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


@intents_app.command("train")
@one_line_errors
def train_command() -> None:
    """Train the model from the corpus (choices on the dev split) and write it beside its hash."""
    from app.conversations.training import CorpusError, train, write_model

    try:
        model, grid = train()
    except CorpusError as exc:
        raise CliError(f"corpus: {exc}") from None
    except ImportError as exc:
        raise CliError(f"training needs scikit-learn: pip install -e '.[test]' ({exc})") from None
    for point in grid:
        typer.echo(
            f"C={point['C']:<6} min_df={point['min_df']} opt_out_weight={point['opt_out_weight']}"
            f"  features={point['features']:>6}  dev accuracy={point['dev_accuracy']:.4f}"
            f"  dev false opt-outs={point['dev_false_opt_outs']}"
        )
    digest = write_model(model)
    typer.echo(f"chose {model.meta['params']}, thresholds {model.meta['thresholds']}")
    typer.echo(f"wrote the model, sha256 {digest}")


@intents_app.command("eval")
@one_line_errors
def eval_command(
    split: Annotated[
        str, typer.Option(help="test (held out), fresh (written after the design), or dev")
    ] = "test",
) -> None:
    """Per-intent precision and recall, confusion, false approvals, opt-out recall, timings."""
    if split not in ("test", "fresh", "dev", "train"):
        raise CliError("--split must be test, fresh, dev or train")
    try:
        from app.conversations.evaluation import report
        from app.conversations.training import load_corpus, load_fresh
    except ImportError as exc:
        raise CliError(f"the eval needs scikit-learn: pip install -e '.[test]' ({exc})") from None
    examples = load_fresh() if split == "fresh" else [e for e in load_corpus() if e.split == split]
    typer.echo(report(examples, split))


@intents_app.command("export")
@one_line_errors
def export_command(
    since: Annotated[
        str | None, typer.Option(help="only corrections made on or after this date")
    ] = None,
) -> None:
    """Advisors' corrections as corpus rows (JSON Lines): review them, then add to corpus/raw/.

    The texts are customers' own words: read them before they leave the dealership.
    """
    from sqlalchemy import select

    from app.conversations.models import InboundMessage

    try:
        start = datetime.combine(date.fromisoformat(since), time()) if since else None
    except ValueError:
        raise CliError(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
    settings = load_settings()
    with transaction(settings) as session:
        query = select(InboundMessage).where(InboundMessage.corrected_intent.is_not(None))
        if start is not None:
            query = query.where(InboundMessage.corrected_at >= start)
        for row in session.scalars(query.order_by(InboundMessage.corrected_at)):
            corpus_row = {
                "text": row.body,
                "intent": row.corrected_intent,
                "language": row.language or "en",
                "reply_to": row.reply_to or "none",
                "source": "advisor_correction",
            }
            sys.stdout.write(json.dumps(corpus_row, ensure_ascii=False) + "\n")
