"""Property-based tests: phone normalisation, the status maps, templates, the TOML loader;
and schemathesis against /openapi.json (no 5xx)."""

from __future__ import annotations

import copy
import tomllib
from itertools import count

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import ConfigError, parse_dealer_config
from app.customers.service import normalise_phone
from app.messaging import templates
from app.messaging.models import OutboundMessage
from app.messaging.service import StatusUpdate, apply_provider_status, state_for_provider_status
from app.repair_orders.models import OPEN_STAGES
from tests.support import SAMPLE_CONFIG

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(st.text(max_size=30), st.sampled_from(["US", "CA", "GB", "MX", "FR"]))
def test_normalised_phones_are_e164_and_stable(raw: str, region: str) -> None:
    e164, problem = normalise_phone(raw, region)
    assert (e164 is None) != (problem is None)
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isdigit() and len(e164) <= 16
        assert normalise_phone(e164, region) == (e164, None)  # idempotent
        assert normalise_phone(e164, "US") == (e164, None)  # region does not matter once +
    else:
        assert problem and len(problem) <= 200


@FAST
@given(
    st.sampled_from(["US", "CA"]),
    st.integers(2000000, 9999999),
    st.sampled_from([415, 212, 604, 312]),
)
def test_a_number_typed_any_way_is_one_e164(region: str, local: int, area: int) -> None:
    digits = f"{area}{local}"
    typed = [
        digits,
        f"({area}) {str(local)[:3]}-{str(local)[3:]}",
        f"{area}.{str(local)[:3]}.{str(local)[3:]}",
        f"+1 {digits}",
        f"1-{area}-{local}",
    ]
    results = {normalise_phone(t, region) for t in typed}
    assert len(results) == 1
    ((e164, _),) = results
    if e164 is not None:
        assert phonenumbers.is_valid_number(phonenumbers.parse(e164))


FORWARD = ["accepted", "queued", "sending", "sent", "delivered", "read"]
_sids = count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from([*FORWARD, "failed", "undelivered"]), min_size=1, max_size=8))
def test_provider_statuses_in_any_order_end_at_the_furthest(
    session: Session, statuses: list[str]
) -> None:
    """Duplicated, late and reordered callbacks: the outcome depends only on what was said."""
    from tests.reliability.test_properties import _message

    message = _message(session)
    for status in statuses:
        apply_provider_status(session, StatusUpdate(sid=message.provider_sid or "", status=status))
    session.flush()
    rank = {s: i for i, s in enumerate(FORWARD)}
    forward = [s for s in statuses if s in rank]
    best = max(forward, key=rank.__getitem__) if forward else None
    failure_first = next((s for s in statuses if s not in rank), None)
    if failure_first is None:
        assert best is not None and message.state == state_for_provider_status(best)
    elif best is not None and rank[best] >= rank["delivered"]:
        # Delivered wins over a failure, whatever the order.
        delivered_before_failure = any(
            s in ("delivered", "read") for s in statuses[: statuses.index(failure_first)]
        )
        if delivered_before_failure:
            assert message.state in ("delivered", "read")
    else:
        assert message.state in ("failed", "undelivered")
    # Repeating the whole story changes nothing.
    state = message.state
    for status in statuses:
        assert (
            apply_provider_status(
                session, StatusUpdate(sid=message.provider_sid or "", status=status)
            )
            == "ignored"
        )
    assert message.state == state
    session.rollback()


def _message(session: Session) -> OutboundMessage:
    from app.dealers.models import DealerGroup, Rooftop

    rooftop = session.scalars(select(Rooftop)).first()
    if rooftop is None:
        group = DealerGroup(name="G")
        session.add(group)
        session.flush()
        rooftop = Rooftop(
            group_id=group.id, slug="r", name="R", timezone="UTC", dms_kind="simulator", config={}
        )
        session.add(rooftop)
        session.flush()
    n = next(_sids)
    message = OutboundMessage(
        rooftop_id=rooftop.id,
        kind="status",
        purpose="status",
        dedupe_key=f"prop:{n}:{id(session)}",
        channel="sms",
        to_address="+14155550142",
        body="hi",
        state="queued",
        provider_sid=f"SM{n:032d}",
        provider_status="queued",
    )
    session.add(message)
    session.flush()
    return message


@FAST
@given(st.text(min_size=1, max_size=20))
def test_unknown_provider_statuses_never_claim_delivery(status: str) -> None:
    assert state_for_provider_status(status) in (
        "queued",
        *(state_for_provider_status(s) for s in [*FORWARD, "failed", "undelivered", "canceled"]),
    )


SAMPLE = tomllib.loads(SAMPLE_CONFIG.read_text())
_key = st.from_regex(r"[a-z][a-z_]{2,15}", fullmatch=True)


@FAST
@given(
    _key,
    st.sampled_from(["group", "rooftop", "rooftop.dms", "(top)"]),
    st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
)
def test_an_unknown_toml_key_anywhere_is_a_config_error_naming_it(
    key: str, where: str, value: object
) -> None:
    data = copy.deepcopy(SAMPLE)
    target = {
        "group": data["group"],
        "rooftop": data["rooftop"][0],
        "rooftop.dms": data["rooftop"][0]["dms"],
        "(top)": data,
    }[where]
    if key in target or (where == "rooftop.dms" and key in {"token", "url", "base_url"}):
        return
    known = parse_dealer_config(copy.deepcopy(data), "x")  # the unmodified file loads
    assert known.rooftop
    target[key] = value
    from app.dealers.service import check_dms_settings

    with pytest.raises(ConfigError) as raised:
        # What `pitwall config load` runs: the schema, then each rooftop's DMS settings.
        check_dms_settings(parse_dealer_config(data, "dealer.toml"), "dealer.toml")
    assert raised.value.key.endswith(key), (key, raised.value)
    assert raised.value.problem.startswith("unknown key")
    assert "dealer.toml" in str(raised.value)


@FAST
@given(st.text(max_size=20), st.sampled_from(sorted(OPEN_STAGES)))
def test_status_map_gives_a_known_stage_or_none(raw: str, stage: str) -> None:
    from app.dealers.models import Rooftop
    from app.repair_orders.service import map_stage

    config = {"status_map": {"WIP": stage, raw: "in_repair"}}
    rooftop = Rooftop(config=config)
    assert map_stage(rooftop, raw) == "in_repair"
    assert map_stage(rooftop, raw + "\x00unknown") is None


STAGE_KINDS = ("checked_in", "awaiting_approval", "ready_for_pickup")


@FAST
@given(st.sampled_from(["en", "es", "fr"]), st.text(max_size=60), st.text(max_size=60))
def test_data_is_never_run_as_a_template(language: str, name: str, description: str) -> None:
    """Whatever a DMS or customer writes ends up as text, never as template code."""
    name = name + " {{ 7*7 }}{% raw %}"
    context = {
        "first_name": name,
        "rooftop_name": "Bayview Toyota",
        "advisor_name": description,
        "ro_number": "R1",
        "vehicle": description,
        "promised_time": "4:00 PM Mon Nov 23",
        "store_hours": "Mon-Fri 7-18",
        "store_phone": "+14155550199",
        "items": [{"description": description, "amount": "$1.00"}],
        "total": "$1.00",
    }
    for kind in STAGE_KINDS:
        text = templates.render(kind, language=language, context=context)
        assert "49" not in text.replace(name, "").replace(description, "")
        source = _template_source(kind, language)
        if "first_name" in source:
            assert "".join(name.split()) in "".join(text.split())


@FAST
@given(st.text(max_size=80))
def test_an_override_cannot_reach_python_internals(snippet: str) -> None:
    from jinja2 import TemplateError
    from jinja2.sandbox import SecurityError

    attack = "{{ ''.__class__.__mro__[1].__subclasses__() }}" + snippet
    with pytest.raises((SecurityError, TemplateError)):
        templates.render("x", language="en", context={}, overrides={"x": attack})


def _template_source(kind: str, language: str) -> str:
    path = templates.TEMPLATE_DIR / f"{kind}.{language}.txt.j2"
    if not path.exists():
        path = templates.TEMPLATE_DIR / f"{kind}.en.txt.j2"
    return path.read_text()
