"""Repair-line names as a Spanish or French customer reads and hears them.

The DMS describes work in the shop's language ("Front brake pads"); a customer who
texts in Spanish should read "pastillas de freno delanteras". Common service work has
a name here; anything else keeps the DMS's words (a wrong translation would be worse).
Names keep to the GSM-7 alphabet where a natural phrase allows, so a translated line
does not turn a two-segment text into a four-segment one.
"""

from __future__ import annotations

import re

_NAMES: dict[str, dict[str, str]] = {
    "front brake pads": {"es": "pastillas de freno delanteras", "fr": "plaquettes de frein avant"},
    "rear brake pads": {"es": "pastillas de freno traseras", "fr": "plaquettes de frein arrière"},
    "oil and filter change": {"es": "cambio de aceite y filtro", "fr": "vidange d'huile et filtre"},
    "oil and filter": {"es": "cambio de aceite y filtro", "fr": "vidange d'huile et filtre"},
    "oil change": {"es": "cambio de aceite", "fr": "vidange d'huile"},
    "tire rotation": {"es": "rotar las llantas", "fr": "permutation des pneus"},
    "cabin air filter": {"es": "filtro de aire de cabina", "fr": "filtre à air d'habitacle"},
    "engine air filter": {"es": "filtro de aire del motor", "fr": "filtre à air du moteur"},
    "wiper blades": {"es": "plumas limpiaparabrisas", "fr": "balais d'essuie-glace"},
    "four-wheel alignment": {"es": "alinear las 4 ruedas", "fr": "parallélisme des 4 roues"},
    "wheel alignment": {"es": "alinear las ruedas", "fr": "parallélisme des roues"},
    "coolant flush": {"es": "lavado del sistema de enfriamiento",
                      "fr": "vidange du liquide de refroidissement"},
    "transmission fluid service": {"es": "cambio de aceite de la caja de cambios",
                                   "fr": "vidange d'huile de transmission"},
    "brake fluid flush": {"es": "purga del sistema de frenos", "fr": "purge du liquide de frein"},
    "battery replacement": {"es": "cambio de acumulador", "fr": "remplacement de la batterie"},
    "multi-point inspection": {"es": "chequeo de varios puntos",
                               "fr": "inspection en plusieurs points"},
    "check engine light diagnosis": {"es": "chequeo de la luz de motor",
                                     "fr": "diagnostic du voyant moteur"},
    "diagnose noise from front end": {"es": "revisar un ruido en la parte delantera",
                                      "fr": "diagnostic d'un bruit à l'avant"},
    "recall campaign": {"es": "campaña de seguridad del fabricante", "fr": "campagne de rappel"},
    "30,000 mile service": {"es": "servicio de 30,000 millas", "fr": "entretien des 30 000 milles"},
}  # fmt: skip
_SPACES = re.compile(r"\s+")


def line_name(description: str, language: str) -> str:
    """The line's name in `language`, or the DMS's own words when there is none."""
    if language == "en":
        return description
    known = _NAMES.get(_SPACES.sub(" ", description.strip().lower()))
    return known.get(language, description) if known else description


def line_names(descriptions: list[str], language: str) -> str:
    """Several lines, comma separated, each in `language` where it has a name."""
    return ", ".join(line_name(d, language) for d in descriptions)
