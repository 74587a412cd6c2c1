"""The plain answers of the customer's page: a link that leads nowhere, too many requests,
a form that did not come from the page; and who is asking (IP, language)."""

from __future__ import annotations

import phonenumbers
from fastapi import Request
from fastapi.responses import HTMLResponse

from app.customer_page import i18n
from app.customer_page.links import Resolved
from app.web.templating import templates


def client_ip(request: Request) -> str:
    """The client's address as app/guards.py settled it (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


def language_of(resolved: Resolved, request: Request) -> str:
    """The customer's language, else the browser's (EN/ES/FR), else the rooftop's."""
    customer_language = resolved.customer.preferred_language if resolved.customer else None
    rooftop_language = resolved.rooftop.settings.language if resolved.rooftop else None
    return i18n.pick_language(
        customer_language,
        i18n.from_accept_language(request.headers.get("accept-language")),
        rooftop_language,
    )


def page(
    request: Request, language: str, status: int, *, title: str, text: str, phone: str | None
) -> HTMLResponse:
    """A plain page: a heading, a sentence, and the store's number to call when known."""
    shown = national(phone) if phone else None
    context = {"lang": language, "title": title, "text": text, "phone": phone, "shown": shown}
    return templates.TemplateResponse(
        request, "customer_page/plain.html", context, status_code=status
    )


def national(number: str) -> str:
    """+14155550199 as (415) 555-0199, the way the store's customers write it."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def gone(request: Request, resolved: Resolved) -> HTMLResponse:
    """404 for an unknown, revoked or expired link: nothing about the RO or the customer."""
    language = language_of(resolved, request)
    rooftop = resolved.rooftop
    phone = (rooftop.service_desk or rooftop.sms_from) if rooftop else None
    text = i18n.t(language, "gone_text" if phone else "gone_unknown")
    return page(
        request, language, 404, title=i18n.t(language, "gone_title"), text=text, phone=phone
    )


def busy(request: Request) -> HTMLResponse:
    """429 over the rate limits, in the browser's language (the link is not looked up)."""
    language = i18n.pick_language(i18n.from_accept_language(request.headers.get("accept-language")))
    response = page(
        request,
        language,
        429,
        title=i18n.t(language, "busy_title"),
        text=i18n.t(language, "busy_text"),
        phone=None,
    )
    response.headers["Retry-After"] = "60"
    return response


def refused(request: Request, language: str) -> HTMLResponse:
    """403 for a POST without the page's CSRF token."""
    return page(request, language, 403, title=i18n.t(language, "refused"), text="", phone=None)
