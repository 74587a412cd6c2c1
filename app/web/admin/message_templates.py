"""The message template editor: each template as a customer reads it, per rooftop and
language, with its SMS segment count; a rooftop's override saved, audited, or removed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import TemplateError

from app.auth.deps import CsrfDep, WebUser, WebUserDep
from app.config import ConfigError
from app.db import utcnow
from app.dealers.edits import change_rooftop_setting
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, SettingsDep
from app.messaging import templates as message_templates
from app.messaging.previews import SAMPLE_LINK, sample_context
from app.web import queries
from app.web.admin.common import admin_page, admin_rooftop
from app.web.admin.flash import redirect_with
from app.web.templating import not_found

router = APIRouter(include_in_schema=False)
LANGUAGES = message_templates.LANGUAGES
MAX_TEMPLATE_CHARS = 2000  # Twilio's body limit is 1,600 characters; room for Jinja


def _rendered(rooftop: Rooftop, kind: str, language: str, source: str | None) -> dict[str, Any]:
    """The text as sent (with `source` instead of the saved template when given)."""
    overrides = dict(rooftop.settings.templates)
    if source is not None:
        overrides[f"{kind}.{language}"] = source
    try:
        body = message_templates.render(
            kind,
            language=language,
            context=sample_context(rooftop, kind, language),
            overrides=overrides,
        )
    except TemplateError as exc:
        return {"body": None, "problem": f"{type(exc).__name__}: {exc}"}
    count, encoding = message_templates.segments(body)
    return {"body": body, "problem": None, "segments": count, "encoding": encoding}


def _file_source(kind: str, language: str) -> str:
    for lang in (language, message_templates.FALLBACK_LANGUAGE):
        path = message_templates.TEMPLATE_DIR / f"{kind}.{lang}.txt.j2"
        if path.exists():
            return path.read_text(encoding="utf-8")
    return ""


def _context(
    database: DatabaseDep,
    user: WebUser,
    rooftop: Rooftop,
    kind: str,
    language: str,
    typed: str | None = None,
) -> dict[str, Any]:
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
    key = f"{kind}.{language}"
    override = rooftop.settings.templates.get(key)
    source = typed if typed is not None else (override or _file_source(kind, language))
    return {
        "title": "Message templates",
        "rooftops": rooftops,
        "rooftop": rooftop,
        "kinds": message_templates.available_kinds(),
        "kind": kind,
        "language": language,
        "languages": LANGUAGES,
        "key": key,
        "override": override,
        "source": source,
        "preview": _rendered(rooftop, kind, language, typed),
        "by_language": {lang: _rendered(rooftop, kind, lang, None) for lang in LANGUAGES},
        "sample_link": SAMPLE_LINK,
    }


@router.get("/admin/templates", response_class=HTMLResponse)
def template_editor(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    rooftop: str | None = None,
    kind: str = "ready_for_pickup",
    language: str = "en",
) -> Response:
    """A message template as a customer would read it, with this rooftop's override."""
    chosen = admin_rooftop(database, user, rooftop)
    if chosen is None or kind not in message_templates.available_kinds():
        return not_found(request, user)
    if language not in LANGUAGES:
        language = "en"
    context = _context(database, user, chosen, kind, language)
    return admin_page(request, user, settings, "web/template_preview.html", context)


@router.post("/admin/templates", response_class=HTMLResponse, dependencies=[CsrfDep])
def template_save(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    rooftop: Annotated[str, Form(max_length=63)],
    kind: Annotated[str, Form(max_length=64)],
    language: Annotated[str, Form(max_length=2)],
    source: Annotated[str, Form(max_length=MAX_TEMPLATE_CHARS)] = "",
    action: Annotated[Literal["preview", "save", "reset"], Form()] = "preview",
) -> Response:
    """Preview what was typed (nothing saved), save it as the override, or remove the override."""
    chosen = admin_rooftop(database, user, rooftop)
    if chosen is None or kind not in message_templates.available_kinds():
        return not_found(request, user)
    if language not in LANGUAGES:
        return not_found(request, user)
    source = source.replace("\r\n", "\n")
    page = "web/template_preview.html"
    if action == "preview":
        context = _context(database, user, chosen, kind, language, typed=source)
        return admin_page(request, user, settings, page, context)
    key = f"{kind}.{language}"
    overrides = dict(chosen.settings.templates)
    if action == "reset":
        overrides.pop(key, None)
    else:
        tried = _rendered(chosen, kind, language, source)
        if tried["problem"] or not source.strip():
            context = _context(database, user, chosen, kind, language, typed=source)
            problem = tried["problem"] or "the text is empty (use Remove override instead)"
            return admin_page(request, user, settings, page, context, error=f"Not saved: {problem}")
        overrides[key] = source
    problem = None
    with database.transaction() as session:
        try:
            changed = change_rooftop_setting(
                session,
                rooftop=session.get_one(Rooftop, chosen.id),
                key="templates",
                value=overrides,
                actor=user.email,
                now=utcnow(),
            )
        except ConfigError as exc:
            session.rollback()
            problem = exc.problem
    if problem is not None:  # drawn after the transaction (SQLite: one writer)
        context = _context(database, user, chosen, kind, language, typed=source)
        return admin_page(request, user, settings, page, context, error=f"Not saved: {problem}")
    done = "Removed the override" if action == "reset" else "Saved the override"
    notice = f"{done} {key} of {chosen.name}." if changed else "No change."
    url = f"/admin/templates?rooftop={chosen.slug}&kind={kind}&language={language}"
    return redirect_with(url, settings, notice=notice)
