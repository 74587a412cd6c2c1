"""`pitwall templates preview`: every message template rendered against a sample RO."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

# Imported where used: `pitwall --help` and the other commands start without them.
if TYPE_CHECKING:
    from app.dealers.models import Rooftop
    from app.messaging.schemas import TemplatePreview

_PREVIEWS = ("preview_all", "sample_repair_order", "sample_rooftop")


def __getattr__(name: str) -> Any:
    """The preview helpers, importable from here as before (tests do), loaded on use."""
    if name in _PREVIEWS:
        from app.messaging import previews

        return getattr(previews, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


templates_app = typer.Typer(help="Message templates.", no_args_is_help=True)


@templates_app.callback()
def templates() -> None:
    """Message templates (templates/messages/ and rooftop overrides)."""


def _load_rooftop(slug: str) -> Rooftop:
    from app.config import Settings
    from app.db import make_engine, make_session_factory
    from app.dealers.models import Rooftop

    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            found = session.query(Rooftop).filter(Rooftop.slug == slug).all()
            if not found:
                raise typer.BadParameter(
                    f"no rooftop {slug!r}; load the dealer config first", param_hint="--rooftop"
                )
            if len(found) > 1:
                raise typer.BadParameter(
                    f"rooftop {slug!r} exists in several groups", param_hint="--rooftop"
                )
            session.expunge(found[0])
            return found[0]
    finally:
        engine.dispose()


@templates_app.command("preview")
def preview(
    rooftop: Annotated[
        str | None, typer.Option("--rooftop", help="rooftop slug (uses its overrides)")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="en, es or fr")] = None,
) -> None:
    """Print each template rendered against a sample RO, with its segment count and encoding."""
    from app.messaging.previews import preview_all, sample_rooftop
    from app.messaging.templates import LANGUAGES

    if language is not None and language not in LANGUAGES:
        raise typer.BadParameter(
            f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}"
        )
    target = _load_rooftop(rooftop) if rooftop else sample_rooftop()
    previews = preview_all(target, language=language)
    for item in previews:
        plural = "" if item.segments == 1 else "s"
        typer.echo(
            f"== {item.name}.{item.language}  {item.segments} segment{plural}, "
            f"{item.encoding}, {len(item.body)} chars"
        )
        typer.echo(item.body)
        typer.echo("")
    typer.echo(segment_table(previews))


def segment_table(previews: list[TemplatePreview]) -> str:
    """Segments per template and language ("2 GSM" / "3 UCS"), over 2 marked with "!"."""
    languages = list(dict.fromkeys(p.language for p in previews))
    cells: dict[str, dict[str, str]] = {}
    for item in previews:
        mark = "!" if item.segments > 2 else ""
        cells.setdefault(item.name, {})[item.language] = (
            f"{item.segments} {item.encoding[:3]}{mark}"
        )
    width = max((len(name) for name in cells), default=8)
    rows = ["segments per language (GSM-7 or UCS-2; ! = more than 2)",
            f"{'template':<{width}}  " + "  ".join(f"{lang:<7}" for lang in languages)]  # fmt: skip
    for name, by_language in cells.items():
        rows.append(
            f"{name:<{width}}  "
            + "  ".join(f"{by_language.get(lang, '-'):<7}" for lang in languages)
        )
    return "\n".join(rows)
