"""Contract §5 effort.high: thresholds, one alert per case per severity, deterministic ids,
reasons, segments and the triggering event."""

from __future__ import annotations

from schemas.alerts import Alert as AlertModel
from streams.journey import CustomerState, apply_event
from streams.rules import Rules
from streams.times import US, to_us
from tests.unit import builders
from tests.unit.builders import (
    BASE,
    CUSTOMER,
    DAYS,
    HOURS,
    RULES,
    at,
    ended,
    held,
    info_repeated,
    policy_blocked,
    started,
    transferred,
)


def apply_all(*args, **kwargs):
    """builders.apply_all, keeping only the effort.high alerts (the journey raises others too)."""
    state, alerts = builders.apply_all(*args, **kwargs)
    return state, [a for a in alerts if a.type == "effort.high"]


def effort_alerts(state, event, rules=RULES):
    return [a for a in apply_event(state, event, rules).alerts if a.type == "effort.high"]


def transfers_journey(n: int) -> list:
    """One phone contact with `n` transfers: 10 points each."""
    return [started("c1", "phone", t=0, case_id="K1")] + [transferred("c1", t=60 * i) for i in range(1, n + 1)]


def test_warning_fires_when_effort_reaches_60_and_critical_when_it_reaches_80_once_each():
    events = transfers_journey(10)
    state = CustomerState(CUSTOMER)
    fired = []
    for e in events:
        for alert in effort_alerts(state, e):
            fired.append((e.event_id, alert.severity, alert.score, alert.threshold))
    assert fired == [
        (events[6].event_id, "warning", 60, 60),  # 6th transfer: 60 points
        (events[8].event_id, "critical", 80, 80),  # 8th transfer: 80 points
    ]


def test_effort_just_below_warning_fires_nothing():
    _, alerts = apply_all(transfers_journey(5) + [held("c1", 90, t=3600)])  # 55 points
    assert alerts == []


def test_one_event_carrying_a_case_past_both_thresholds_emits_only_critical():
    # c1: 2 transfers, 2 repeated infos, ended unresolved = 50; c2's start adds repeat 15 + switch 15
    events = [
        started("c1", "chat", t=0, case_id="K1"),
        transferred("c1", t=60),
        transferred("c1", t=120),
        info_repeated("c1", t=180),
        info_repeated("c1", t=240),
        ended("c1", False, t=300),
    ]
    state, alerts = apply_all(events)
    assert alerts == []
    crossing = started("c2", "phone", t=1 * DAYS, case_id="K1")
    alerts = effort_alerts(state, crossing)
    assert [(a.severity, a.score, a.threshold, a.trigger_event_id) for a in alerts] == [
        ("critical", 80, 80, crossing.event_id)
    ]
    _, later = apply_all([transferred("c2", t=1 * DAYS + 60), held("c2", 600, t=1 * DAYS + 120)], state=state)
    assert later == []


def test_each_case_gets_its_own_alerts():
    events = transfers_journey(6) + [started("c2", "chat", t=1 * HOURS, case_id="K2")]
    events += [transferred("c2", t=1 * HOURS + 60 * i) for i in range(1, 7)]
    _, alerts = apply_all(events)
    assert [(a.case_id, a.severity) for a in alerts] == [("K1", "warning"), ("K2", "warning")]
    assert alerts[0].alert_id != alerts[1].alert_id


def test_alert_ids_are_deterministic_when_the_same_events_are_processed_again():
    events = transfers_journey(9)
    _, first = apply_all(events)
    _, second = apply_all(events)  # a fresh state, as after losing it
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == 2
    assert first == second


def test_replaying_events_into_the_same_state_emits_no_second_alert():
    events = transfers_journey(9)
    state, first = apply_all(events)
    _, again = apply_all(events, state=state)
    assert len(first) == 2
    assert again == []


def test_alert_reasons_list_each_driver_with_its_points_largest_first():
    # at the policy block: transfers 30, repeated info 20, policy 10, hassle 5 = 65
    events = [
        started("c1", "phone", t=0, case_id="K1", reason="billing", agent_id="a1", team_id="t1"),
        transferred("c1", t=60, from_agent_id="a1", to_agent_id="a2"),
        transferred("c1", t=120, from_agent_id="a2", to_agent_id="a3"),
        transferred("c1", t=180, from_agent_id="a3", to_agent_id="a4", from_team_id="t1", to_team_id="t2"),
        info_repeated("c1", t=240),
        info_repeated("c1", t=300),
        held("c1", 90, t=360),
        policy_blocked("c1", t=420),
    ]
    _, alerts = apply_all(events)
    assert len(alerts) == 1
    alert = alerts[0]
    assert [(r["driver"], r["contribution"]) for r in alert.reasons] == [
        ("transfer", 30),
        ("repeated_info", 20),
        ("policy_friction", 10),
        ("hassle", 5),
    ]
    assert all(isinstance(r["detail"], str) and r["detail"] for r in alert.reasons)
    assert (alert.type, alert.severity, alert.score, alert.threshold) == ("effort.high", "warning", 65, 60)
    assert (alert.customer_id, alert.case_id, alert.contact_id) == (CUSTOMER, "K1", "c1")
    assert alert.trigger_event_id == events[-1].event_id
    assert alert.occurred_at == to_us(events[-1].occurred_at)
    assert set(alert.segments) == {"channel:phone", "team:t2", "agent:a4", "reason:billing"}


def test_reference_journey_goes_critical_at_the_third_contact_with_reasons_largest_first():
    events = [
        started("c1", "chat", t=0),
        ended("c1", False, t=900),
        started("c2", "email", t=20 * HOURS),
        ended("c2", False, t=20 * HOURS + 900),
        started("c3", "phone", t=40 * HOURS),
        transferred("c3", t=40 * HOURS + 300),
        info_repeated("c3", t=40 * HOURS + 400),
        ended("c3", True, t=40 * HOURS + 900),
    ]
    _, alerts = apply_all(events)
    # c3's start brings 50 to 80 (repeat 30, switch 30, unresolved 20): critical only
    assert [(a.severity, a.score, a.trigger_event_id) for a in alerts] == [("critical", 80, events[4].event_id)]
    contributions = [r["contribution"] for r in alerts[0].reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert {r["driver"]: r["contribution"] for r in alerts[0].reasons} == {
        "repeat_contact": 30,
        "channel_switch": 30,
        "unresolved": 20,
    }


def test_alert_segments_are_those_of_the_contact_whose_event_crossed():
    events = [
        started("c1", "chat", t=0, case_id="K1", reason="refund", agent_id="a1", team_id="chat-team"),
        transferred("c1", t=60),
        transferred("c1", t=120),
        ended("c1", False, t=180),
        started("c2", "phone", t=1 * DAYS, case_id="K1", agent_id="a9", team_id="phone-team"),
        transferred("c2", t=1 * DAYS + 60),  # 30 + 15 + 15 + 10 = 70
    ]
    _, alerts = apply_all(events)
    assert len(alerts) == 1
    assert alerts[0].trigger_event_id == events[4].event_id
    assert alerts[0].contact_id == "c2"
    assert set(alerts[0].segments) == {"channel:phone", "team:phone-team", "agent:a9", "reason:refund"}


def test_alert_thresholds_come_from_rules():
    rules = Rules(effort_warning=20, effort_critical=40)
    _, alerts = apply_all(transfers_journey(5), rules)
    assert [(a.severity, a.score, a.threshold) for a in alerts] == [("warning", 20, 20), ("critical", 40, 40)]


def test_alert_value_matches_the_alert_schema():
    _, alerts = apply_all(transfers_journey(6))
    value = alerts[0].to_dict(emitted_at=to_us(BASE) + 400 * US)
    assert (value["occurred_at"], value["emitted_at"]) == (at(360), at(400))  # the 6th transfer's time
    model = AlertModel.model_validate(value)
    assert (model.type, model.severity, model.customer_id, model.case_id, model.segment) == (
        "effort.high",
        "warning",
        CUSTOMER,
        "K1",
        None,
    )
    assert model.due_at is None
    assert alerts[0].key == CUSTOMER
