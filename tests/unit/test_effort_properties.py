"""Contract §4 as properties, for a case whose contacts all carry case_id on contact.started:
the final effort does not depend on arrival order, effort never falls, duplicates change
nothing, and the state survives the codec."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CONTACT_CHANNELS, SELF_SERVICE_CHANNELS
from streams.codec import decode, encode
from streams.journey import CustomerState, apply_event
from streams.rules import DRIVERS
from tests.unit.builders import (
    CUSTOMER,
    DAYS,
    MINUTES,
    RULES,
    apply_all,
    effort_of,
    ended,
    event,
    held,
    info_repeated,
    policy_blocked,
    started,
    transferred,
)

CASE = "K1"
PROPERTY = settings(max_examples=200, deadline=None)


@st.composite
def contact_events(draw: st.DrawFn, n: int) -> list:
    """One contact of the case: its start and what happened in it, in time order."""
    cid = f"c{n}"
    t0 = draw(st.integers(0, 10 * DAYS))
    events = [
        started(
            cid,
            draw(st.sampled_from(CONTACT_CHANNELS)),
            t=t0,
            case_id=CASE,
            agent_id=draw(st.sampled_from(["a1", "a2", None])),
            queue_wait_seconds=draw(st.sampled_from([None, 30, 120, 121, 600])),
            event_id=f"{cid}-start",
        )
    ]
    kinds = draw(st.lists(st.sampled_from(["transfer", "hold", "info", "policy"]), max_size=5))
    for i, kind in enumerate(kinds):
        t, eid = t0 + (i + 1) * MINUTES, f"{cid}-{kind}-{i}"
        if kind == "transfer":
            events.append(transferred(cid, t=t, to_agent_id=f"a{i + 3}", event_id=eid))
        elif kind == "hold":
            events.append(held(cid, draw(st.sampled_from([10, 60, 61, 400])), t=t, event_id=eid))
        elif kind == "info":
            events.append(info_repeated(cid, t=t, event_id=eid))
        else:
            events.append(policy_blocked(cid, t=t, event_id=eid))
    if draw(st.booleans()):
        end = t0 + (len(kinds) + 1) * MINUTES
        scripted = draw(st.sampled_from([None, False, True]))
        events.append(ended(cid, draw(st.booleans()), t=end, scripted=scripted, event_id=f"{cid}-end"))
    return events


@st.composite
def journeys(draw: st.DrawFn) -> list:
    """1–5 contacts of case K1 and maybe failed self-service attempts of it, in generation order."""
    n = draw(st.integers(1, 5))
    events = [e for i in range(n) for e in draw(contact_events(i))]
    for i in range(draw(st.integers(0, 2))):
        channel = draw(st.sampled_from(SELF_SERVICE_CHANNELS))
        t = draw(st.integers(0, 10 * DAYS))
        events.append(event("self_service.failed", t, case_id=CASE, channel=channel, event_id=f"ss-{i}"))
    return events


def final_effort(events: list) -> tuple[dict[str, float], float]:
    state, _ = apply_all(events)
    effort = effort_of(state, CASE)
    return effort.drivers, effort.total


def current(state: CustomerState) -> tuple[dict[str, float], float]:
    """The case's drivers and total so far; zeros before its first contact starts."""
    if CASE not in state.cases:
        return dict.fromkeys(DRIVERS, 0.0), 0.0
    effort = effort_of(state, CASE)
    return effort.drivers, effort.total


@PROPERTY
@given(data=st.data())
def test_final_effort_does_not_depend_on_arrival_order(data):
    events = data.draw(journeys())
    shuffled = data.draw(st.permutations(events))
    assert final_effort(shuffled) == final_effort(events)


@PROPERTY
@given(data=st.data())
def test_effort_never_falls_as_events_arrive(data):
    events = data.draw(st.permutations(data.draw(journeys())))
    state = CustomerState(CUSTOMER)
    before, total_before = current(state)
    for e in events:
        apply_event(state, e, RULES)
        after, total_after = current(state)
        assert all(after[d] >= before[d] for d in DRIVERS), (e, before, after)
        assert total_after >= total_before
        before, total_before = after, total_after


@PROPERTY
@given(data=st.data())
def test_duplicates_anywhere_change_neither_state_nor_alerts(data):
    events = data.draw(st.permutations(data.draw(journeys())))
    clean_state, clean_alerts = apply_all(events)

    # each repeat is (after which event it arrives, which already-applied event it repeats)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, len(events) - 1), st.integers(0, len(events) - 1)), max_size=8))
    repeats = sorted((max(p), min(p)) for p in pairs)
    state = CustomerState(CUSTOMER)
    alerts = []
    for i, e in enumerate(events):
        alerts += apply_event(state, e, RULES).alerts
        for _, j in (r for r in repeats if r[0] == i):
            outcome = apply_event(state, events[j], RULES)
            assert outcome.duplicate is True
            assert outcome.alerts == []
    assert encode(state) == encode(clean_state)
    assert alerts == clean_alerts


@PROPERTY
@given(data=st.data())
def test_codec_round_trips_the_state_after_any_journey(data):
    events = data.draw(st.permutations(data.draw(journeys())))
    state, _ = apply_all(events)
    blob = encode(state)
    assert decode(blob) == state
    assert encode(decode(blob)) == blob


@PROPERTY
@given(data=st.data())
def test_state_restored_from_bytes_midway_ends_like_the_one_kept_in_memory(data):
    events = data.draw(st.permutations(data.draw(journeys())))
    cut = data.draw(st.integers(0, len(events)))
    kept, _ = apply_all(events[:cut])
    restored = decode(encode(kept))
    _, kept_alerts = apply_all(events[cut:], state=kept)
    _, restored_alerts = apply_all(events[cut:], state=restored)
    assert encode(restored) == encode(kept)
    assert restored_alerts == kept_alerts
