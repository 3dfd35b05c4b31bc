"""The state codec (decode(encode(s)) == s) and duplicates (same event_id) changing nothing."""

from __future__ import annotations

import msgpack
import pytest

from streams.codec import decode, encode
from streams.journey import CustomerState, apply_event
from tests.unit.builders import (
    CUSTOMER,
    DAYS,
    HOURS,
    RULES,
    apply_all,
    case_reopened,
    case_resolved,
    effort_of,
    ended,
    event,
    held,
    info_repeated,
    policy_blocked,
    self_service_failed,
    started,
    transferred,
)


def rich_journey() -> list:
    """Every kind of fact the state keeps: agents and teams, holds, infos, policies, a contact
    still waiting for its start, a pending self-service attempt, case marks and alerts."""
    return [
        self_service_failed(t=0, channel="app", reason="billing"),
        started("c1", "chat", t=1 * HOURS, reason="billing", agent_id="a1", team_id="t1", queue_wait_seconds=150.5),
        transferred("c1", t=1 * HOURS + 60, from_agent_id="a1", to_agent_id="a2", to_team_id="t2"),
        info_repeated("c1", t=1 * HOURS + 90, info="order number"),
        info_repeated("c1", t=1 * HOURS + 95),
        held("c1", 75, t=1 * HOURS + 120),
        policy_blocked("c1", t=1 * HOURS + 150, policy="no refunds"),
        ended("c1", False, t=1 * HOURS + 600, scripted=True, handle_seconds=540, disposition="callback"),
        started("c2", "phone", t=2 * DAYS, case_id="c1"),
        ended("c2", True, t=2 * DAYS + 600),
        case_resolved("c1", t=2 * DAYS + 700, proactive=True),
        case_reopened("c1", t=3 * DAYS),
        transferred("c9", t=4 * DAYS),  # its start has not arrived
        self_service_failed(t=10 * DAYS, channel="web"),  # no contact after it yet
    ]


def test_codec_round_trips_a_rich_state():
    state, alerts = apply_all(rich_journey())
    assert alerts, "the journey should have alerted, so `alerted` is non-empty"
    assert state.cases["c1"].alerted
    assert len(state.pending_self_service) == 1
    assert state.contacts["c9"].started_at is None
    assert decode(encode(state)) == state


def test_codec_round_trip_is_byte_stable():
    state, _ = apply_all(rich_journey())
    blob = encode(state)
    assert encode(decode(blob)) == blob


def test_codec_round_trips_an_empty_state():
    state = CustomerState(CUSTOMER)
    assert decode(encode(state)) == state


def test_codec_refuses_an_unknown_format_version():
    blob = msgpack.packb([99, CUSTOMER, [], [], [], b"", None, 0], use_bin_type=True)
    with pytest.raises(ValueError, match="unknown state format"):
        decode(blob)


def test_decoded_state_goes_on_exactly_like_the_original():
    events = rich_journey()
    kept, _ = apply_all(events[:8])
    restored = decode(encode(kept))
    _, alerts_a = apply_all(events[8:], state=kept)
    _, alerts_b = apply_all(events[8:], state=restored)
    assert encode(restored) == encode(kept)
    assert alerts_a == alerts_b


# --- duplicates -------------------------------------------------------------------------------


def test_duplicate_event_changes_nothing_and_alerts_nothing():
    events = rich_journey()
    state, _ = apply_all(events)
    before = encode(state)
    for e in events:
        outcome = apply_event(state, e, RULES)
        assert outcome.duplicate is True
        assert outcome.alerts == []
        assert outcome.cases == []
    assert encode(state) == before


def test_event_with_an_already_seen_event_id_is_a_duplicate_whatever_its_content():
    state, _ = apply_all([started("c1", "phone", t=0, case_id="K1", event_id="e-1")])
    before = encode(state)
    outcome = apply_event(state, transferred("c1", t=60, event_id="e-1"), RULES)
    assert outcome.duplicate is True
    assert encode(state) == before
    assert effort_of(state, "K1").total == 0


def test_duplicate_arriving_after_a_codec_round_trip_is_still_a_duplicate():
    crossing = transferred("c1", t=600)
    events = [started("c1", "phone", t=0, case_id="K1")] + [transferred("c1", t=60 * i) for i in range(1, 6)]
    state, _ = apply_all(events + [crossing])
    restored = decode(encode(state))
    before = encode(restored)
    outcome = apply_event(restored, crossing, RULES)
    assert outcome.duplicate is True
    assert outcome.alerts == []
    assert encode(restored) == before


def test_alert_already_emitted_is_not_emitted_again_after_a_codec_round_trip():
    state, first = apply_all(
        [started("c1", "phone", t=0, case_id="K1")] + [transferred("c1", t=60 * i) for i in range(1, 7)]
    )
    assert [a.severity for a in first] == ["warning"]
    restored = decode(encode(state))
    outcome = apply_event(restored, transferred("c1", t=3600), RULES)  # 70: no new severity
    assert outcome.alerts == []


def test_duplicate_of_a_survey_or_churn_event_is_recognised_too():
    survey = event("survey.responded", t=0, nps=3)
    churn = event("customer.churned", t=60)
    state, _ = apply_all([survey, churn])
    before = encode(state)
    assert apply_event(state, survey, RULES).duplicate is True
    assert apply_event(state, churn, RULES).duplicate is True
    assert encode(state) == before
