"""An advisor corrects what a text meant in one click; `pitwall intents export` hands it on."""

from __future__ import annotations

import json

from app.conversations.models import InboundMessage, Task
from app.deps import Database
from tests.app.test_cli import run
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.support import ServedApp


def test_a_misread_text_is_corrected_in_one_click_and_exported_in_corpus_format(
    world: World, served: ServedApp, database: Database, database_url: str
) -> None:
    task_id = world.task["bayview-toyota"]
    with database.transaction() as session:
        task = session.get_one(Task, task_id)
        message = session.get_one(InboundMessage, task.inbound_message_id)
        message.body = "any chance it's done before my shift"
        message.intent, message.intent_label, message.intent_confidence = "unsure", "question", 0.41
        message.intent_guesses = [["question", 0.41], ["status_question", 0.38], ["other", 0.1]]
        message.reply_to, message.language = "parts_delay", "en"
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
        assert "Pitwall read this as <strong>question</strong> (41% sure)" in inbox
        assert 'value="status_question"' in inbox
        clicked = client.post(
            f"/inbox/tasks/{task_id}/intent",
            data={"csrf_token": csrf_of(inbox), "intent": "status_question"},
        )
        assert clicked.status_code == 303
        after = client.get("/inbox").text
        assert "Corrected to <strong>status question</strong> by toyota.advisor@" in after
        refused = client.post(
            f"/inbox/tasks/{task_id}/intent",
            data={"csrf_token": csrf_of(after), "intent": "approve_everything"},
        )
        assert refused.status_code == 409 and "is not an intent" in refused.text
    with database.transaction() as session:
        stored = session.get_one(InboundMessage, message.id)
        assert stored.corrected_intent == "status_question"
        assert stored.corrected_by == "toyota.advisor@bayview.example"
    exported = run(["intents", "export"], {"PITWALL_DATABASE_URL": database_url})
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line) for line in exported.stdout.splitlines()] == [
        {
            "text": "any chance it's done before my shift",
            "intent": "status_question",
            "language": "en",
            "reply_to": "parts_delay",
            "source": "advisor_correction",
        }
    ]
