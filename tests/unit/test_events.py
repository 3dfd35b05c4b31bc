"""The input event models of contract §3 (schemas/events.py): what is valid, and what it means."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import (
    CONTACT_CHANNELS,
    EVENT_MODELS,
    EVENT_TYPES,
    SELF_SERVICE_CHANNELS,
    CaseReopened,
    CaseResolved,
    ContactEnded,
    ContactHeld,
    ContactInfoRepeated,
    ContactPolicyBlocked,
    ContactStarted,
    ContactTransferred,
    CustomerChurned,
    SelfServiceFailed,
    SurveyResponded,
    parse_event,
)
from streams.times import to_us

OCCURRED_AT = "2026-11-22T10:00:00Z"
INSTANT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# Contract §3: the required fields of each type (besides event_id, type, occurred_at, customer_id).
# A survey needs at least one score; nps is the one used here.
REQUIRED: dict[str, dict[str, Any]] = {
    "contact.started": {"contact_id": "ct-1", "channel": "phone"},
    "contact.transferred": {"contact_id": "ct-1"},
    "contact.info_repeated": {"contact_id": "ct-1"},
    "contact.held": {"contact_id": "ct-1", "hold_seconds": 61},
    "contact.policy_blocked": {"contact_id": "ct-1"},
    "contact.ended": {"contact_id": "ct-1", "resolved": False},
    "self_service.failed": {},
    "case.reopened": {"case_id": "case-1"},
    "case.resolved": {"case_id": "case-1"},
    "survey.responded": {"nps": 9},
    "customer.churned": {},
}

# Contract §3: every optional field of each type, with a valid value.
OPTIONAL: dict[str, dict[str, Any]] = {
    "contact.started": {
        "case_id": "case-1",
        "reason": "billing",
        "agent_id": "ag-1",
        "team_id": "tm-1",
        "queue_wait_seconds": 135.5,
    },
    "contact.transferred": {
        "from_agent_id": "ag-1",
        "to_agent_id": "ag-2",
        "from_team_id": "tm-1",
        "to_team_id": "tm-2",
    },
    "contact.info_repeated": {"info": "account number"},
    "contact.held": {},
    "contact.policy_blocked": {"policy": "no refunds after 30 days"},
    "contact.ended": {
        "agent_id": "ag-1",
        "team_id": "tm-1",
        "handle_seconds": 420.0,
        "scripted": True,
        "disposition": "refund issued",
    },
    "self_service.failed": {"channel": "chatbot", "reason": "billing", "case_id": "case-1"},
    "case.reopened": {},
    "case.resolved": {"proactive": True},
    "survey.responded": {
        "ces": 3,
        "csat": 2,
        "contact_id": "ct-1",
        "case_id": "case-1",
        "comment": "Took three calls.",
        "channel": "chat",
        "team_id": "tm-1",
        "agent_id": "ag-1",
        "reason": "billing",
    },
    "customer.churned": {"reason": "price"},
}

MODELS: dict[str, type] = {
    "contact.started": ContactStarted,
    "contact.transferred": ContactTransferred,
    "contact.info_repeated": ContactInfoRepeated,
    "contact.held": ContactHeld,
    "contact.policy_blocked": ContactPolicyBlocked,
    "contact.ended": ContactEnded,
    "self_service.failed": SelfServiceFailed,
    "case.reopened": CaseReopened,
    "case.resolved": CaseResolved,
    "survey.responded": SurveyResponded,
    "customer.churned": CustomerChurned,
}

ALL_TYPES = list(REQUIRED)


def event(type_: str, **fields: Any) -> dict[str, Any]:
    """A valid event of `type_` with only its required fields; `fields` override or add."""
    doc: dict[str, Any] = {
        "event_id": "ev-1",
        "type": type_,
        "occurred_at": OCCURRED_AT,
        "customer_id": "cu-1",
        **REQUIRED[type_],
    }
    doc.update(fields)
    return doc


def parse(doc: dict[str, Any]) -> Any:
    return parse_event(json.dumps(doc).encode())


def test_the_event_types_are_exactly_those_of_the_contract() -> None:
    assert set(EVENT_TYPES) == set(REQUIRED)
    assert set(EVENT_MODELS) == set(REQUIRED)
    assert {t: EVENT_MODELS[t] for t in REQUIRED} == MODELS


def test_the_channels_are_exactly_those_of_the_contract() -> None:
    assert set(CONTACT_CHANNELS) == {"phone", "chat", "email", "messaging", "social", "web_form", "store", "video"}
    assert set(SELF_SERVICE_CHANNELS) == {"web", "app", "chatbot", "ivr"}


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_event_with_only_required_fields_is_valid(type_: str) -> None:
    ev = parse(event(type_))
    assert type(ev) is MODELS[type_]
    assert ev.type == type_
    assert ev.event_id == "ev-1"
    assert ev.customer_id == "cu-1"
    assert ev.occurred_at == INSTANT
    dumped = ev.model_dump(mode="json")
    for name, value in REQUIRED[type_].items():
        assert dumped[name] == value
    for name in OPTIONAL[type_]:
        assert getattr(ev, name) is None


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_event_with_all_optional_fields_is_valid(type_: str) -> None:
    ev = parse(event(type_, **OPTIONAL[type_]))
    assert type(ev) is MODELS[type_]
    dumped = ev.model_dump(mode="json")
    for name, value in {**REQUIRED[type_], **OPTIONAL[type_]}.items():
        assert dumped[name] == value, name


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_optional_fields_may_be_null(type_: str) -> None:
    ev = parse(event(type_, **dict.fromkeys(OPTIONAL[type_])) | REQUIRED[type_])
    assert type(ev) is MODELS[type_]
    for name in set(OPTIONAL[type_]) - set(REQUIRED[type_]):
        assert getattr(ev, name) is None


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_unknown_extra_fields_are_accepted_and_ignored(type_: str) -> None:
    extra = {"x_source": "crm", "x_nested": {"a": [1, 2, {"b": None}]}, "x_null": None, "x_num": 1.5}
    ev = parse(event(type_, **extra))
    assert type(ev) is MODELS[type_]
    dumped = ev.model_dump()
    for name in extra:
        assert name not in dumped
        assert not hasattr(ev, name)
    assert ev == parse(event(type_))


def test_fields_of_other_types_are_ignored_even_when_they_would_be_invalid_there() -> None:
    # channel and nps are not fields of contact.held: they are "not named" for it and ignored.
    ev = parse(event("contact.held", channel="fax", nps=99, resolved="yes"))
    assert isinstance(ev, ContactHeld)
    assert "channel" not in ev.model_dump()


@pytest.mark.parametrize("score", [{"nps": 7}, {"ces": 5}, {"csat": 4}])
def test_survey_with_a_single_score_is_valid(score: dict[str, int]) -> None:
    doc = event("survey.responded")
    del doc["nps"]
    ev = parse(doc | score)
    assert isinstance(ev, SurveyResponded)
    ((name, value),) = score.items()
    assert getattr(ev, name) == value
    assert [n for n in ("nps", "ces", "csat") if getattr(ev, n) is not None] == [name]


@pytest.mark.parametrize(
    ("field", "value"),
    [("nps", 0), ("nps", 10), ("ces", 1), ("ces", 7), ("csat", 1), ("csat", 5)],
)
def test_survey_score_bounds_are_inclusive(field: str, value: int) -> None:
    doc = event("survey.responded")
    del doc["nps"]
    ev = parse(doc | {field: value})
    assert getattr(ev, field) == value


def test_survey_comment_of_exactly_4000_chars_is_valid() -> None:
    ev = parse(event("survey.responded", comment="é" * 4000))
    assert isinstance(ev, SurveyResponded)
    assert len(ev.comment) == 4000


@pytest.mark.parametrize("channel", ["phone", "chat", "email", "messaging", "social", "web_form", "store", "video"])
def test_every_contact_channel_is_valid(channel: str) -> None:
    assert parse(event("contact.started", channel=channel)).channel == channel


@pytest.mark.parametrize("channel", ["web", "app", "chatbot", "ivr"])
def test_every_self_service_channel_is_valid(channel: str) -> None:
    assert parse(event("self_service.failed", channel=channel)).channel == channel


@pytest.mark.parametrize("field", ["event_id", "customer_id"])
@pytest.mark.parametrize("value", ["x", "x" * 128, "é" * 128, "😀" * 128])
def test_ids_of_1_to_128_chars_are_valid(field: str, value: str) -> None:
    # 1–128 *characters*: 128 multi-byte characters are still valid.
    assert getattr(parse(event("customer.churned", **{field: value})), field) == value


def test_hold_seconds_just_above_zero_is_valid() -> None:
    assert parse(event("contact.held", hold_seconds=0.001)).hold_seconds == 0.001


def test_hold_seconds_integer_is_taken_as_a_number() -> None:
    ev = parse(event("contact.held", hold_seconds=61))
    assert ev.hold_seconds == 61.0


def test_contact_ended_resolved_true_and_false() -> None:
    assert parse(event("contact.ended", resolved=True)).resolved is True
    assert parse(event("contact.ended", resolved=False)).resolved is False


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-22T10:00:00Z", INSTANT),
        ("2026-11-22T10:00:00z", INSTANT),
        ("2026-11-22t10:00:00Z", INSTANT),
        ("2026-11-22T10:00:00+00:00", INSTANT),
        ("2026-11-22T11:00:00+01:00", INSTANT),
        ("2026-11-22T04:30:00-05:30", INSTANT),
        ("2026-11-23T00:00:00+14:00", INSTANT),
        ("2026-11-21T23:00:00-11:00", INSTANT),
        ("2026-11-22T10:00:00.5Z", INSTANT + timedelta(milliseconds=500)),
        ("2026-11-22T10:00:00.250z", INSTANT + timedelta(milliseconds=250)),
        ("2026-11-22T11:00:00.123456+01:00", INSTANT + timedelta(microseconds=123456)),
        ("2026-11-22T04:30:00.000001-05:30", INSTANT + timedelta(microseconds=1)),
    ],
)
def test_timestamp_with_offset_is_valid_and_means_the_right_instant(text: str, utc: datetime) -> None:
    ev = parse(event("customer.churned", occurred_at=text))
    assert ev.occurred_at.utcoffset() is not None
    assert ev.occurred_at == utc
    assert ev.occurred_at.astimezone(UTC).replace(tzinfo=None) == utc.replace(tzinfo=None)
    assert to_us(ev.occurred_at) == to_us(utc)


def test_timestamp_keeps_its_offset() -> None:
    ev = parse(event("customer.churned", occurred_at="2026-11-22T04:30:00-05:30"))
    assert ev.occurred_at.utcoffset() == timedelta(hours=-5, minutes=-30)


def test_same_instant_in_different_offsets_orders_equal() -> None:
    a = parse(event("customer.churned", occurred_at="2026-11-22T11:00:00+01:00"))
    b = parse(event("customer.churned", occurred_at="2026-11-22T10:00:00Z"))
    c = parse(event("customer.churned", occurred_at="2026-11-22T10:30:00+01:00"))  # 09:30Z: earlier
    assert a.occurred_at == b.occurred_at
    assert c.occurred_at < b.occurred_at


def test_events_are_frozen() -> None:
    ev = parse(event("contact.held"))
    with pytest.raises(ValidationError):
        ev.hold_seconds = 5  # type: ignore[misc]
