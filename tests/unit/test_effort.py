"""Contract §4: each effort driver's points, the cap, custom weights, and the reference journey."""

from __future__ import annotations

import pytest

from streams.rules import DRIVERS, Rules
from tests.unit.builders import (
    DAYS,
    HOURS,
    MINUTES,
    apply_all,
    effort_of,
    ended,
    held,
    info_repeated,
    nonzero,
    policy_blocked,
    self_service_failed,
    started,
    transferred,
)


def test_single_resolved_phone_contact_has_no_effort():
    state, alerts = apply_all([started("c1", "phone", t=0), ended("c1", True, t=5 * MINUTES)])
    effort = effort_of(state, "c1")
    assert effort.drivers == dict.fromkeys(DRIVERS, 0)
    assert effort.total == 0
    assert effort.reasons() == []
    assert alerts == []


def test_reference_journey_chat_email_phone_scores_100():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0),
            ended("c1", False, t=15 * MINUTES),
            started("c2", "email", t=20 * HOURS),
            ended("c2", False, t=20 * HOURS + 30 * MINUTES),
            started("c3", "phone", t=40 * HOURS),
            transferred("c3", t=40 * HOURS + 5 * MINUTES),
            info_repeated("c3", t=40 * HOURS + 7 * MINUTES),
            ended("c3", True, t=40 * HOURS + 20 * MINUTES),
        ]
    )
    assert {c.case_id for c in state.contacts.values()} == {"c1"}
    effort = effort_of(state, "c1")
    assert nonzero(effort) == {
        "repeat_contact": 30,
        "channel_switch": 30,
        "unresolved": 20,
        "transfer": 10,
        "repeated_info": 10,
    }
    assert effort.total == 100


def test_repeat_contact_is_15_per_contact_after_the_first():
    state, _ = apply_all([started(f"c{i}", "phone", t=i * HOURS, case_id="K1") for i in range(4)])
    assert nonzero(effort_of(state, "K1")) == {"repeat_contact": 45}


def test_channel_switch_is_15_per_change_between_consecutive_contacts_by_occurred_at():
    # by occurred_at: chat, chat, email, phone, phone -> 2 changes; in arrival order it would be 4
    state, _ = apply_all(
        [
            started("c4", "phone", t=4 * HOURS, case_id="K1"),
            started("c0", "chat", t=0, case_id="K1"),
            started("c2", "email", t=2 * HOURS, case_id="K1"),
            started("c1", "chat", t=1 * HOURS, case_id="K1"),
            started("c3", "phone", t=3 * HOURS, case_id="K1"),
        ]
    )
    assert nonzero(effort_of(state, "K1")) == {"repeat_contact": 60, "channel_switch": 30}


def test_transfer_is_10_per_transfer():
    state, _ = apply_all(
        [started("c1", "phone", t=0), transferred("c1", t=60), transferred("c1", t=120), transferred("c1", t=180)]
    )
    assert nonzero(effort_of(state, "c1")) == {"transfer": 30}


def test_repeated_info_is_10_per_info_repeated():
    state, _ = apply_all(
        [started("c1", "chat", t=0), info_repeated("c1", t=60, info="order number"), info_repeated("c1", t=120)]
    )
    assert nonzero(effort_of(state, "c1")) == {"repeated_info": 20}


def test_unresolved_is_10_per_contact_that_ended_resolved_false():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            ended("c1", False, t=600),
            started("c2", "phone", t=1 * DAYS, case_id="K1"),
            ended("c2", False, t=1 * DAYS + 600),
            started("c3", "phone", t=2 * DAYS, case_id="K1"),
            ended("c3", True, t=2 * DAYS + 600),
        ]
    )
    assert nonzero(effort_of(state, "K1")) == {"repeat_contact": 30, "unresolved": 20}


def test_policy_friction_is_10_per_policy_blocked():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0),
            policy_blocked("c1", t=60, policy="no refunds after 30 days"),
            policy_blocked("c1", t=90),
        ]
    )
    assert nonzero(effort_of(state, "c1")) == {"policy_friction": 20}


@pytest.mark.parametrize(("hold_seconds", "points"), [(30, 0), (60, 0), (60.5, 5), (61, 5), (900, 5)])
def test_hassle_is_5_per_hold_over_60s(hold_seconds, points):
    state, _ = apply_all([started("c1", "phone", t=0), held("c1", hold_seconds, t=60)])
    assert effort_of(state, "c1").drivers["hassle"] == points
    assert effort_of(state, "c1").total == points


@pytest.mark.parametrize(("queue_wait", "points"), [(0, 0), (120, 0), (120.5, 5), (121, 5), (3600, 5)])
def test_hassle_is_5_per_queue_wait_over_120s(queue_wait, points):
    state, _ = apply_all([started("c1", "phone", t=0, queue_wait_seconds=queue_wait)])
    assert effort_of(state, "c1").drivers["hassle"] == points


def test_hassle_adds_every_long_hold_and_long_queue_wait_of_the_case():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1", queue_wait_seconds=300),
            held("c1", 61, t=60),
            held("c1", 60, t=200),
            held("c1", 240, t=400),
            started("c2", "phone", t=1 * DAYS, case_id="K1", queue_wait_seconds=120),
            held("c2", 90, t=1 * DAYS + 60),
        ]
    )
    assert effort_of(state, "K1").drivers["hassle"] == 20  # holds 61, 240, 90 and the 300 s wait


def test_scripted_service_is_5_per_contact_that_ended_scripted():
    state, _ = apply_all(
        [
            started("c1", "chat", t=0, case_id="K1"),
            ended("c1", True, t=600, scripted=True),
            started("c2", "chat", t=1 * DAYS, case_id="K1"),
            ended("c2", True, t=1 * DAYS + 600, scripted=False),
            started("c3", "chat", t=2 * DAYS, case_id="K1"),
            ended("c3", True, t=2 * DAYS + 600, scripted=True),
        ]
    )
    assert nonzero(effort_of(state, "K1")) == {"repeat_contact": 30, "scripted_service": 10}


def test_self_service_failure_is_10_per_attempt_of_the_case():
    state, _ = apply_all(
        [
            started("c1", "phone", t=0, case_id="K1"),
            self_service_failed(t=1 * HOURS, case_id="K1", channel="ivr"),
            self_service_failed(t=2 * HOURS, case_id="K1", channel="chatbot"),
        ]
    )
    assert effort_of(state, "K1").drivers["self_service_failure"] == 20


@pytest.mark.parametrize("self_service_first", [True, False])
def test_failed_self_service_and_the_contact_it_attaches_to_count_as_one_channel_change(self_service_first):
    attempt = self_service_failed(t=0, channel="app")
    contact = started("c1", "phone", t=30 * MINUTES)
    state, _ = apply_all([attempt, contact] if self_service_first else [contact, attempt])
    effort = effort_of(state, "c1")
    assert nonzero(effort) == {"channel_switch": 15, "self_service_failure": 10}
    assert effort.total == 25


def test_failed_self_service_before_a_channel_change_adds_one_change_to_the_contacts_changes():
    # web self-service, then chat, then phone: self-service -> chat is one change, chat -> phone another
    state, _ = apply_all(
        [
            self_service_failed(t=0, channel="web"),
            started("c1", "chat", t=1 * HOURS),
            started("c2", "phone", t=2 * HOURS),
        ]
    )
    assert nonzero(effort_of(state, "c1")) == {"repeat_contact": 15, "channel_switch": 30, "self_service_failure": 10}


def test_total_is_capped_at_100_while_drivers_keep_their_points():
    events = [started("c1", "chat", t=0)] + [transferred("c1", t=60 * i) for i in range(1, 9)]
    events += [info_repeated("c1", t=600 + 60 * i) for i in range(5)]
    state, _ = apply_all(events)
    effort = effort_of(state, "c1")
    assert nonzero(effort) == {"transfer": 80, "repeated_info": 50}
    assert effort.total == 100


def test_custom_weights_and_hassle_limits_from_rules_are_used():
    rules = Rules(
        effort_repeat_contact=4,
        effort_channel_switch=3,
        effort_transfer=7,
        effort_repeated_info=2,
        effort_unresolved=1,
        effort_policy_friction=6,
        effort_hassle=9,
        effort_scripted_service=8,
        effort_self_service_failure=11,
        effort_hold_over_s=30,
        effort_queue_wait_over_s=10,
    )
    state, _ = apply_all(
        [
            self_service_failed(t=0, channel="app"),  # attaches to c1, the next contact
            started("c1", "chat", t=1 * HOURS, case_id="K1", queue_wait_seconds=11),
            transferred("c1", t=1 * HOURS + 60),
            info_repeated("c1", t=1 * HOURS + 120),
            held("c1", 31, t=1 * HOURS + 180),
            policy_blocked("c1", t=1 * HOURS + 240),
            ended("c1", False, t=1 * HOURS + 300, scripted=True),
            started("c2", "phone", t=1 * DAYS, case_id="K1"),
        ],
        rules,
    )
    effort = effort_of(state, "K1", rules)
    assert effort.drivers == {
        "repeat_contact": 4,
        "channel_switch": 6,  # self-service (app) -> chat -> phone
        "transfer": 7,
        "repeated_info": 2,
        "unresolved": 1,
        "policy_friction": 6,
        "hassle": 18,  # the 31 s hold and the 11 s queue wait
        "scripted_service": 8,
        "self_service_failure": 11,
    }
    assert effort.total == 63


def test_custom_weights_can_push_the_total_past_the_cap():
    rules = Rules(effort_transfer=60)
    state, _ = apply_all([started("c1", "phone", t=0), transferred("c1", t=60), transferred("c1", t=120)], rules)
    effort = effort_of(state, "c1", rules)
    assert effort.drivers["transfer"] == 120
    assert effort.total == 100
