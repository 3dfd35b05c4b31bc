"""Contract §3: which case a contact joins, when its events count, where a failed self-service
attempt goes, and whether a case is open or resolved."""

from __future__ import annotations

import pytest

from streams.cases import case_status
from streams.journey import CustomerState, apply_event
from streams.rules import DAY, Rules
from tests.unit.builders import (
    DAYS,
    HOURS,
    RULES,
    apply_all,
    case_of,
    case_reopened,
    case_resolved,
    effort_of,
    ended,
    info_repeated,
    nonzero,
    self_service_failed,
    started,
    transferred,
)


def status(state: CustomerState, case_id: str) -> str:
    return case_status(state.cases[case_id], state.contacts)


# --- which case a contact joins ---------------------------------------------------------------


def test_contact_with_case_id_belongs_to_that_case_whatever_its_time_or_reason():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, case_id="K1", reason="billing"),
            started("c2", "phone", t=30 * DAYS, case_id="K1", reason="delivery"),
            started("c3", "email", t=1 * HOURS, case_id="K2", reason="billing"),
        ]
    )
    assert [case_of(state, c) for c in ("c1", "c2", "c3")] == ["K1", "K1", "K2"]
    assert state.cases["K1"].contacts == [
        (state.contacts["c1"].started_at, "c1"),
        (state.contacts["c2"].started_at, "c2"),
    ]


def test_contact_without_case_id_joins_recent_case_with_same_reason():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            started("c2", "phone", t=3 * DAYS, reason="billing"),
        ]
    )
    assert case_of(state, "c1") == "c1"
    assert case_of(state, "c2") == "c1"
    assert set(state.cases) == {"c1"}


def test_contact_without_case_id_joins_the_most_recent_matching_case():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            started("c2", "chat", t=1 * HOURS, reason="delivery"),
            started("c3", "phone", t=2 * HOURS),  # no reason: both match, c2's case is more recent
            started("c4", "phone", t=3 * HOURS, reason="billing"),  # only c1's case matches
        ]
    )
    assert [case_of(state, c) for c in ("c1", "c2", "c3", "c4")] == ["c1", "c2", "c2", "c1"]


def test_missing_reason_on_the_earlier_case_matches_and_the_case_takes_the_first_reason_given():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0),
            started("c2", "phone", t=1 * HOURS, reason="billing"),  # joins: the case has no reason
            started("c3", "email", t=2 * HOURS, reason="delivery"),  # the case's reason is now billing
        ]
    )
    assert case_of(state, "c2") == "c1"
    assert case_of(state, "c3") == "c3"


def test_contact_with_different_reason_opens_new_case_named_after_the_contact():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            started("c2", "phone", t=1 * HOURS, reason="delivery"),
        ]
    )
    assert case_of(state, "c2") == "c2"
    assert set(state.cases) == {"c1", "c2"}


def test_contact_exactly_7_days_after_the_case_latest_contact_joins_it():
    state, _ = apply_all([started("c1", "chat", t=0), started("c2", "phone", t=7 * DAYS)])
    assert case_of(state, "c2") == "c1"


def test_contact_7_days_and_1_second_after_the_case_latest_contact_opens_new_case():
    state, _ = apply_all([started("c1", "chat", t=0), started("c2", "phone", t=7 * DAYS + 1)])
    assert case_of(state, "c2") == "c2"
    assert set(state.cases) == {"c1", "c2"}


def test_repeat_window_counts_from_the_case_latest_contact_not_its_first():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0),
            started("c2", "chat", t=5 * DAYS),
            started("c3", "phone", t=11 * DAYS),  # 11 days after c1, 6 after c2
        ]
    )
    assert [case_of(state, c) for c in ("c1", "c2", "c3")] == ["c1", "c1", "c1"]


def test_repeat_window_is_taken_from_rules():
    rules = Rules(repeat_window_us=1 * DAY)
    state, _ = apply_all([started("c1", "chat", t=0), started("c2", "phone", t=25 * HOURS)], rules)
    assert case_of(state, "c2") == "c2"


def test_case_choice_is_not_revised_when_a_late_contact_would_have_bridged_the_gap():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            started("c3", "phone", t=8 * DAYS, reason="billing"),  # 8 days after c1: a new case
            started("c2", "email", t=5 * DAYS, case_id="c1"),  # arrives late, 3 days before c3
        ]
    )
    assert case_of(state, "c3") == "c3"
    assert case_of(state, "c2") == "c1"
    assert [cid for _, cid in state.cases["c1"].contacts] == ["c1", "c2"]
    assert [cid for _, cid in state.cases["c3"].contacts] == ["c3"]


def test_case_reason_comes_from_contacts_only_not_from_self_service_attempts():
    # a case whose contacts give no reason matches any reason, whatever its self-service attempts say
    state, _ = apply_all(
        [
            started("c1", "chat", t=0),  # no reason
            self_service_failed(t=1 * HOURS, case_id="c1", channel="app", reason="billing"),
            started("c2", "phone", t=2 * HOURS, reason="delivery"),
        ]
    )
    assert case_of(state, "c2") == "c1"


# --- events of a contact before its contact.started -------------------------------------------


def test_events_before_contact_started_count_nothing_until_the_start_arrives():
    state = CustomerState("cust-1")
    apply_all([started("c1", "phone", t=0, case_id="K1"), ended("c1", True, t=10 * 60)], state=state)
    assert effort_of(state, "K1").total == 0

    early = [
        transferred("c2", t=2 * HOURS + 60),
        info_repeated("c2", t=2 * HOURS + 120),
        ended("c2", False, t=2 * HOURS + 300),
    ]
    for e in early:
        outcome = apply_event(state, e, RULES)
        assert outcome.cases == []
        assert outcome.alerts == []
    assert effort_of(state, "K1").total == 0
    assert set(state.cases) == {"K1"}

    outcome = apply_event(state, started("c2", "phone", t=2 * HOURS, case_id="K1"), RULES)
    assert outcome.cases == ["K1"]
    assert nonzero(effort_of(state, "K1")) == {
        "repeat_contact": 15,
        "transfer": 10,
        "repeated_info": 10,
        "unresolved": 10,
    }
    assert effort_of(state, "K1").total == 45


def test_events_before_contact_started_without_case_id_count_in_the_case_the_start_chooses():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            transferred("c2", t=1 * HOURS + 60),
            info_repeated("c2", t=1 * HOURS + 120),
        ]
    )
    assert nonzero(effort_of(state, "c1")) == {}
    apply_all([started("c2", "chat", t=1 * HOURS, reason="billing")], state=state)
    assert nonzero(effort_of(state, "c1")) == {"repeat_contact": 15, "transfer": 10, "repeated_info": 10}


# --- failed self-service without a contact ----------------------------------------------------


def test_failed_self_service_arriving_first_attaches_to_case_of_next_contact_within_24h():
    state, _ = apply_all([self_service_failed(t=0, channel="app"), started("c1", "phone", t=2 * HOURS)])
    assert len(state.cases["c1"].self_service) == 1
    assert state.cases["c1"].self_service[0].channel == "app"
    assert state.pending_self_service == []


def test_failed_self_service_arriving_after_its_contact_started_attaches_to_that_contact_case():
    state, _ = apply_all([started("c1", "phone", t=2 * HOURS), self_service_failed(t=0, channel="app")])
    assert len(state.cases["c1"].self_service) == 1
    assert state.pending_self_service == []


@pytest.mark.parametrize("self_service_first", [True, False])
def test_failed_self_service_does_not_attach_to_a_contact_25h_later(self_service_first):
    attempt = self_service_failed(t=0, channel="web")
    contact = started("c1", "phone", t=25 * HOURS)
    state, _ = apply_all([attempt, contact] if self_service_first else [contact, attempt])
    assert state.cases["c1"].self_service == []
    assert nonzero(effort_of(state, "c1")) == {}
    assert len(state.pending_self_service) == 1


def test_failed_self_service_attaches_to_the_next_contact_not_an_earlier_or_later_one():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, reason="billing"),
            started("c3", "email", t=5 * HOURS, reason="refund"),
            started("c2", "phone", t=3 * HOURS, reason="delivery"),
            self_service_failed(t=1 * HOURS, channel="ivr"),
        ]
    )
    assert [case_of(state, c) for c in ("c1", "c2", "c3")] == ["c1", "c2", "c3"]
    assert len(state.cases["c2"].self_service) == 1
    assert state.cases["c1"].self_service == []
    assert state.cases["c3"].self_service == []


def test_failed_self_service_with_case_id_joins_that_case():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, case_id="K1"),
            started("c2", "phone", t=2 * HOURS, case_id="K2"),
            self_service_failed(t=1 * HOURS, case_id="K1", channel="chatbot"),
        ]
    )
    assert len(state.cases["K1"].self_service) == 1
    assert state.cases["K2"].self_service == []
    assert effort_of(state, "K1").drivers["self_service_failure"] == 10


# --- open or resolved -------------------------------------------------------------------------


def test_case_is_open_while_its_contact_runs():
    state, _ = apply_all([started("c1", "phone", t=0, case_id="K1")])
    assert status(state, "K1") == "open"


def test_case_is_resolved_when_its_latest_contact_ended_resolved():
    state, _ = apply_all([started("c1", "phone", t=0, case_id="K1"), ended("c1", True, t=600)])
    assert status(state, "K1") == "resolved"


def test_case_stays_open_when_its_latest_contact_ended_unresolved():
    state, _ = apply_all([started("c1", "phone", t=0, case_id="K1"), ended("c1", False, t=600)])
    assert status(state, "K1") == "open"


def test_case_is_resolved_on_case_resolved():
    state, _ = apply_all(
        [started("c1", "phone", t=0, case_id="K1"), ended("c1", False, t=600), case_resolved("K1", t=1 * DAYS)]
    )
    assert status(state, "K1") == "resolved"


def test_later_contact_reopens_a_resolved_case():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            ended("c1", True, t=600),
            started("c2", "chat", t=2 * DAYS, case_id="K1"),
        ]
    )
    assert status(state, "K1") == "open"


def test_case_reopened_reopens_and_a_later_case_resolved_resolves_again():
    state, _ = apply_all(
        [started("c1", "phone", t=0, case_id="K1"), ended("c1", True, t=600), case_reopened("K1", t=1 * DAYS)]
    )
    assert status(state, "K1") == "open"
    apply_all([case_resolved("K1", t=2 * DAYS)], state=state)
    assert status(state, "K1") == "resolved"


def test_case_status_follows_occurred_at_not_arrival_order_for_resolved_and_reopened():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            case_reopened("K1", t=2 * DAYS),
            case_resolved("K1", t=1 * DAYS),  # arrives last but happened before the reopening
        ]
    )
    assert status(state, "K1") == "open"


def test_case_status_follows_occurred_at_when_an_earlier_contact_end_arrives_late():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            started("c2", "chat", t=2 * DAYS, case_id="K1"),
            ended("c1", True, t=600),  # ended the earlier contact; c2 is still running
        ]
    )
    assert status(state, "K1") == "open"


def test_case_status_follows_occurred_at_when_a_later_contact_start_arrives_before_case_resolved():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            started("c2", "chat", t=3 * DAYS, case_id="K1"),
            case_resolved("K1", t=1 * DAYS),
        ]
    )
    assert status(state, "K1") == "open"
