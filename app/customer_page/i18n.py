"""Every word the customer's page shows, in English, Spanish and French."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("en", "es", "fr")

STAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "checked_in": "Checked in",
        "diagnosing": "Inspecting",
        "awaiting_approval": "Waiting for your approval",
        "approval_answered": "We have your answer",
        "awaiting_parts": "Waiting for parts",
        "in_repair": "Being repaired",
        "quality_check": "Final check",
        "ready_for_pickup": "Ready for pickup",
        "closed": "Picked up",
        "canceled": "Canceled",
    },
    "es": {
        "checked_in": "Registrado",
        "diagnosing": "En inspección",
        "awaiting_approval": "Esperando su aprobación",
        "approval_answered": "Recibimos su respuesta",
        "awaiting_parts": "Esperando piezas",
        "in_repair": "En reparación",
        "quality_check": "Revisión final",
        "ready_for_pickup": "Listo para recoger",
        "closed": "Entregado",
        "canceled": "Cancelado",
    },
    "fr": {
        "checked_in": "Enregistré",
        "diagnosing": "En inspection",
        "awaiting_approval": "En attente de votre accord",
        "approval_answered": "Nous avons votre réponse",
        "awaiting_parts": "En attente de pièces",
        "in_repair": "En réparation",
        "quality_check": "Contrôle final",
        "ready_for_pickup": "Prêt à récupérer",
        "closed": "Récupéré",
        "canceled": "Annulé",
    },
}

TEXT: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Your {vehicle}",
        "status": "Status",
        "promised": "Expected ready",
        "promised_moved": "was {before}",
        "no_promise": "Your advisor will give you a time",
        "advisor": "Your advisor: {name}",
        "advisor_none": "Your service team",
        "call": "Call",
        "text": "Text",
        "waiting_on": "Waiting on",
        "waiting_parts": "parts",
        "waiting_approval": "your approval (below)",
        "waiting_shop": "the shop to enter your answer",
        "next": "next",
        "updated": "Updated {time}",
        "approve_heading": "Recommended work",
        "your_answers": "Your answers",
        "approve_intro": "Choose approve or decline for each item, then review.",
        "approve": "Approve",
        "decline": "Decline",
        "review": "Review my choices",
        "tech_note": "Technician's note",
        "photo": "Photo of {what}",
        "confirm_heading": "Please confirm",
        "confirm_total": "Total approved",
        "confirm_send": "Confirm",
        "confirm_back": "Change my choices",
        "approved": "Approved",
        "declined": "Declined",
        "choose_each": "Choose approve or decline for each item.",
        "no_longer": "{what} no longer waits for your approval: nothing was changed for it.",
        "thanks": "Thank you. {advisor} has your answer.",
        "already": "You already answered this. Nothing was changed.",
        "changed": "The work or its price changed since you looked. Nothing was saved: "
        "please check again.",
        "declined_heading": "Work you declined",
        "book_intro": "Book a visit for this work, or ask us to call you.",
        "book_pick": "Pick a time",
        "book_this": "Book this",
        "no_slots": "No open times in the next days online.",
        "callback": "Please call me back",
        "booked": "Booked: {time}. We'll see you then.",
        "callback_asked": "Thanks: we'll call you back.",
        "slot_taken": "That time was just taken. Please pick another.",
        "choose_line": "Choose at least one item to book.",
        "gone_title": "This link no longer works",
        "gone_text": "For your car's status, call or text the store.",
        "gone_unknown": "For your car's status, reply to the text you received or call the store.",
        "busy_title": "Too many requests",
        "busy_text": "Please wait a minute and try again.",
        "refused": "This page expired. Reload it and try again.",
        "total": "Total",
    },
    "es": {
        "title": "Su {vehicle}",
        "status": "Estado",
        "promised": "Listo aproximadamente",
        "promised_moved": "antes {before}",
        "no_promise": "Su asesor le dará una hora",
        "advisor": "Su asesor: {name}",
        "advisor_none": "Su equipo de servicio",
        "call": "Llamar",
        "text": "Mensaje",
        "waiting_on": "Esperando",
        "waiting_parts": "piezas",
        "waiting_approval": "su aprobación (abajo)",
        "waiting_shop": "que el taller registre su respuesta",
        "next": "siguiente",
        "updated": "Actualizado {time}",
        "approve_heading": "Trabajo recomendado",
        "your_answers": "Sus respuestas",
        "approve_intro": "Elija aprobar o rechazar cada trabajo y luego revise.",
        "approve": "Aprobar",
        "decline": "Rechazar",
        "review": "Revisar mi elección",
        "tech_note": "Nota del técnico",
        "photo": "Foto de {what}",
        "confirm_heading": "Confirme por favor",
        "confirm_total": "Total aprobado",
        "confirm_send": "Confirmar",
        "confirm_back": "Cambiar mi elección",
        "approved": "Aprobado",
        "declined": "Rechazado",
        "choose_each": "Elija aprobar o rechazar para cada trabajo.",
        "no_longer": "{what} ya no espera su aprobación: no se cambió nada.",
        "thanks": "Gracias. {advisor} ya tiene su respuesta.",
        "already": "Ya respondió a esto. No se cambió nada.",
        "changed": "El trabajo o su precio cambió. No se guardó nada: revíselo de nuevo.",
        "declined_heading": "Trabajo que rechazó",
        "book_intro": "Agende una visita para este trabajo o pida que lo llamemos.",
        "book_pick": "Elija una hora",
        "book_this": "Agendar",
        "no_slots": "No hay horas disponibles en línea en los próximos días.",
        "callback": "Llámenme, por favor",
        "booked": "Agendado: {time}. Lo esperamos.",
        "callback_asked": "Gracias: lo llamaremos.",
        "slot_taken": "Esa hora se acaba de ocupar. Elija otra, por favor.",
        "choose_line": "Elija al menos un trabajo para agendar.",
        "gone_title": "Este enlace ya no funciona",
        "gone_text": "Para saber el estado de su auto, llame o escriba a la tienda.",
        "gone_unknown": "Para saber el estado de su auto, responda al mensaje que recibió "
        "o llame a la tienda.",
        "busy_title": "Demasiadas solicitudes",
        "busy_text": "Espere un minuto e intente de nuevo.",
        "refused": "Esta página expiró. Recárguela e intente de nuevo.",
        "total": "Total",
    },
    "fr": {
        "title": "Votre {vehicle}",
        "status": "État",
        "promised": "Prêt vers",
        "promised_moved": "avant {before}",
        "no_promise": "Votre conseiller vous donnera une heure",
        "advisor": "Votre conseiller : {name}",
        "advisor_none": "Votre équipe de service",
        "call": "Appeler",
        "text": "Écrire",
        "waiting_on": "En attente de",
        "waiting_parts": "pièces",
        "waiting_approval": "votre accord (ci-dessous)",
        "waiting_shop": "l'atelier, qui enregistre votre réponse",
        "next": "à venir",
        "updated": "Mis à jour {time}",
        "approve_heading": "Travaux recommandés",
        "your_answers": "Vos réponses",
        "approve_intro": "Acceptez ou refusez chaque travail, puis vérifiez.",
        "approve": "Accepter",
        "decline": "Refuser",
        "review": "Vérifier mes choix",
        "tech_note": "Note du technicien",
        "photo": "Photo : {what}",
        "confirm_heading": "Veuillez confirmer",
        "confirm_total": "Total accepté",
        "confirm_send": "Confirmer",
        "confirm_back": "Modifier mes choix",
        "approved": "Accepté",
        "declined": "Refusé",
        "choose_each": "Acceptez ou refusez chaque travail.",
        "no_longer": "{what} n'attend plus votre accord : rien n'a été changé.",
        "thanks": "Merci. {advisor} a reçu votre réponse.",
        "already": "Vous avez déjà répondu. Rien n'a été changé.",
        "changed": "Les travaux ou leur prix ont changé. Rien n'a été enregistré : "
        "vérifiez à nouveau.",
        "declined_heading": "Travaux refusés",
        "book_intro": "Réservez une visite pour ces travaux ou demandez qu'on vous rappelle.",
        "book_pick": "Choisissez une heure",
        "book_this": "Réserver",
        "no_slots": "Aucune heure libre en ligne dans les prochains jours.",
        "callback": "Rappelez-moi",
        "booked": "Réservé : {time}. À bientôt.",
        "callback_asked": "Merci : nous vous rappellerons.",
        "slot_taken": "Cette heure vient d'être prise. Choisissez-en une autre.",
        "choose_line": "Choisissez au moins un travail à réserver.",
        "gone_title": "Ce lien ne fonctionne plus",
        "gone_text": "Pour l'état de votre véhicule, appelez ou écrivez au garage.",
        "gone_unknown": "Pour l'état de votre véhicule, répondez au message reçu "
        "ou appelez le garage.",
        "busy_title": "Trop de demandes",
        "busy_text": "Patientez une minute et réessayez.",
        "refused": "Cette page a expiré. Rechargez-la et réessayez.",
        "total": "Total",
    },
}

_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
    "fr": ("lun", "mar", "mer", "jeu", "ven", "sam", "dim"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "fr": (
        "janv",
        "févr",
        "mars",
        "avr",
        "mai",
        "juin",
        "juil",
        "août",
        "sept",
        "oct",
        "nov",
        "déc",
    ),
}


def pick_language(*candidates: str | None) -> str:
    """The first candidate we have words for (a customer's, the rooftop's), else English."""
    for candidate in candidates:
        code = (candidate or "").lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def from_accept_language(header: str | None) -> str | None:
    """The first of EN/ES/FR named in an Accept-Language header (for a link we cannot place)."""
    for part in (header or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return None


def t(language: str, key: str, **values: str) -> str:
    """One string in the language, with its values filled in."""
    text = TEXT.get(language, TEXT["en"])[key]
    return text.format(**values) if values else text


def stage_label(language: str, stage: str) -> str:
    return STAGES.get(language, STAGES["en"]).get(stage, stage.replace("_", " "))


def clock(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """4:30 PM (en) or 16:30 (es, fr) on the rooftop's wall clock."""
    local = moment.astimezone(zone)
    if language == "en":
        return f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    return f"{local:%H:%M}"


def day_and_time(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """Tue Dec 8, 4:30 PM / mar 8 dic, 16:30 / mar 8 déc, 16:30, in the rooftop's zone."""
    local = moment.astimezone(zone)
    day = _DAYS[language][local.weekday()]
    month = _MONTHS[language][local.month - 1]
    if language == "en":
        return f"{day} {month} {local.day}, {clock(moment, zone, language)}"
    return f"{day} {local.day} {month}, {clock(moment, zone, language)}"
