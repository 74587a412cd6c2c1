"""The intent classifier against a table of real-looking customer texts.

Run with `-s` to see the accuracy and the misses. The table is the specification: add
a row when a customer's message was misread, then extend `app/conversations/intents.py`.
"""

from __future__ import annotations

from collections import Counter

import pytest

from app.conversations.intents import classify

# (message, opted_out, expected intent)
TABLE: list[tuple[str, bool, str]] = [
    # opt-out keywords: whole message only
    ("STOP", False, "opt_out"),
    ("stop", False, "opt_out"),
    ("  Stop. ", False, "opt_out"),
    ("STOPALL", False, "opt_out"),
    ("Unsubscribe", False, "opt_out"),
    ("cancel", False, "opt_out"),
    ("END", False, "opt_out"),
    ("quit", False, "opt_out"),
    ("REVOKE", False, "opt_out"),
    ("optout", False, "opt_out"),
    ("Alto", False, "opt_out"),
    ("PARAR", False, "opt_out"),
    ("Arrêt", False, "opt_out"),
    ("stop!", False, "opt_out"),
    # opt-in
    ("START", False, "opt_in"),
    ("unstop", False, "opt_in"),
    ("YES", True, "opt_in"),
    ("yes", True, "opt_in"),
    ("Start", True, "opt_in"),
    # help
    ("HELP", False, "help"),
    ("info", False, "help"),
    ("Ayuda", False, "help"),
    ("aide", False, "help"),
    # status questions
    ("Is my car ready?", False, "status_question"),
    ("is it ready yet", False, "status_question"),
    ("When will it be done?", False, "status_question"),
    ("when will my truck be ready", False, "status_question"),
    ("status?", False, "status_question"),
    ("Any update on my car?", False, "status_question"),
    ("Hi, any updates?", False, "status_question"),
    ("how's my car coming along", False, "status_question"),
    ("Can I pick it up today?", False, "status_question"),
    ("what time will it be ready", False, "status_question"),
    ("is the rav4 done", False, "status_question"),
    ("Hey is my F-150 finished?", False, "status_question"),
    ("ready?", False, "status_question"),
    ("how much longer", False, "status_question"),
    ("ETA on my car?", False, "status_question"),
    ("Is she done yet? Need her for work tomorrow", False, "status_question"),
    ("when can I come get it", False, "status_question"),
    ("¿Ya está listo mi carro?", False, "status_question"),
    ("ya esta listo?", False, "status_question"),
    ("Cuándo estará listo mi coche?", False, "status_question"),
    ("¿Cómo va mi camioneta?", False, "status_question"),
    ("hay noticias de mi carro", False, "status_question"),
    ("Est-ce que ma voiture est prête ?", False, "status_question"),
    ("Quand est-ce que je peux la récupérer?", False, "status_question"),
    ("des nouvelles de ma voiture?", False, "status_question"),
    ("est-elle prête?", False, "status_question"),
    ("What's the status of my repair order", False, "status_question"),
    # approvals
    ("yes", False, "approve"),
    ("Yes please", False, "approve"),
    ("ok go ahead", False, "approve"),
    ("Approve", False, "approve"),
    ("approved", False, "approve"),
    ("Sure, do it", False, "approve"),
    ("Yeah go ahead with the brakes", False, "approve"),
    ("sounds good", False, "approve"),
    ("Sí", False, "approve"),
    ("si, adelante", False, "approve"),
    ("Oui", False, "approve"),
    ("oui allez-y", False, "approve"),
    ("OK", False, "approve"),
    ("please proceed with the repair", False, "approve"),
    ("y", False, "approve"),
    ("You can do the work", False, "approve"),
    # declining a follow-up
    ("no", False, "decline_followup"),
    ("No thanks", False, "decline_followup"),
    ("not now", False, "decline_followup"),
    ("Stop reminding me", False, "decline_followup"),
    ("please stop texting me about the brakes", False, "decline_followup"),
    ("no gracias", False, "decline_followup"),
    ("Non merci", False, "decline_followup"),
    ("not interested", False, "decline_followup"),
    ("Maybe later", False, "decline_followup"),
    ("I already had it done somewhere else", False, "decline_followup"),
    ("no me interesa", False, "decline_followup"),
    ("nah", False, "decline_followup"),
    # everything else goes to an advisor
    ("Can you call me back?", False, "other"),
    ("How much for an oil change?", False, "other"),
    ("I left my sunglasses in the car", False, "other"),
    ("Do you have a loaner available?", False, "other"),
    ("Thanks!", False, "other"),
    ("who is this", False, "other"),
    ("Can I speak to Dana?", False, "other"),
    ("stop by at 3 if that works", False, "other"),
    ("I want to cancel my appointment on Friday", False, "other"),
    ("¿Tienen servicio los domingos?", False, "other"),
    ("Merci beaucoup", False, "other"),
    ("", False, "other"),
    ("👍", False, "other"),
    ("What do I owe?", False, "other"),
    ("The check engine light came back on", False, "other"),
]


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 80


@pytest.mark.parametrize(("text", "opted_out", "expected"), TABLE)
def test_each_message(text: str, opted_out: bool, expected: str) -> None:
    assert classify(text, opted_out=opted_out).name == expected


def test_accuracy_report() -> None:
    misses = [
        (t, e, classify(t, opted_out=o).name)
        for t, o, e in TABLE
        if classify(t, opted_out=o).name != e
    ]
    accuracy = 1 - len(misses) / len(TABLE)
    per_intent = Counter(e for _, _, e in TABLE)
    print(
        f"\nintent accuracy: {accuracy:.1%} on {len(TABLE)} messages; per intent {dict(per_intent)}"
    )
    for text, expected, got in misses:
        print(f"  miss: {text!r}: expected {expected}, got {got}")
    assert accuracy >= 0.95


def test_language_of_spanish_and_french_rules() -> None:
    assert classify("¿Ya está listo mi carro?").language == "es"
    assert classify("no gracias").language == "es"
    assert classify("Est-ce que ma voiture est prête ?").language == "fr"
    assert classify("Is my car ready?").language == "en"
