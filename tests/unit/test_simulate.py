"""The simulated contact centre (`effortpulse simulate`): deterministic, valid, and shaped like
CEB's findings when its events are run through the project's own pure core."""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

import pytest

from schemas.events import parse_event
from streams import feed
from streams.cli import main
from streams.effort import score
from streams.journey import CustomerState, apply_event
from streams.rules import Rules
from streams.simulate import BANDS, CONTACT_CHANNELS, KINDS, Simulation, generate, to_json
from streams.times import to_us

START = to_us(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
RULES = Rules()


@dataclass
class Replayed:
    """A simulation run through the pure core: every customer's state and each case's effort."""

    sim: Simulation
    states: dict[str, CustomerState]
    effort: dict[str, float]  # case_id → total

    def case_of_survey(self, survey: dict) -> str:
        return self.states[survey["customer_id"]].contacts[survey["contact_id"]].case_id


@pytest.fixture(scope="module")
def big() -> Replayed:
    sim = generate(1500, seed=42, start_us=START)
    states: dict[str, CustomerState] = {}
    for raw in sim.events:
        event = parse_event(to_json(raw))  # every event must validate
        state = states.get(event.customer_id) or states.setdefault(event.customer_id, CustomerState(event.customer_id))
        apply_event(state, event, RULES)
    effort = {
        case_id: score(case, state.contacts, RULES).total
        for state in states.values()
        for case_id, case in state.cases.items()
    }
    return Replayed(sim, states, effort)


def test_the_same_seed_gives_the_same_events_and_another_seed_other_events() -> None:
    a = generate(100, seed=7, start_us=START)
    b = generate(100, seed=7, start_us=START)
    c = generate(100, seed=8, start_us=START)
    assert list(a.lines()) == list(b.lines())
    assert a.events != c.events
    assert [e["event_id"] for e in a.events[:3]] == ["sim-7-0", "sim-7-1", "sim-7-2"]


def test_a_customers_journeys_do_not_depend_on_how_many_customers_there_are() -> None:
    small = generate(30, seed=3, start_us=START)
    large = generate(60, seed=3, start_us=START)

    # the same journeys; only their times, and so which may leave out case_id, differ
    def plans(sim: Simulation) -> list[tuple]:
        return [(j.customer_id, j.kind, j.profile, j.effort, j.contacts, j.nps, j.churned_after) for j in sim.journeys]

    assert plans(small) == plans(large)[: len(small.journeys)]


def test_end_us_makes_the_last_event_happen_then() -> None:
    end = to_us(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    sim = generate(50, seed=1, end_us=end)
    assert max(e["occurred_at"] for e in sim.events) == "2026-11-25T10:00:00Z"


def test_every_event_validates_and_has_a_unique_id(big: Replayed) -> None:
    events = big.sim.events
    assert sum(state.events for state in big.states.values()) == len(events)  # all parsed and applied
    for raw in events:
        assert raw["occurred_at"].endswith("Z")
        assert raw["customer_id"].startswith("cust-") and len(raw["customer_id"]) == 11
    assert len({e["event_id"] for e in events}) == len(events)
    assert set(Counter(e["type"] for e in events)) == {
        "contact.started", "contact.transferred", "contact.info_repeated", "contact.held",
        "contact.policy_blocked", "contact.ended", "self_service.failed", "case.reopened", "case.resolved",
        "survey.responded", "customer.churned",
    }  # fmt: skip


def test_events_come_in_occurred_at_order_but_for_a_few_contact_events(big: Replayed) -> None:
    events = big.sim.events
    # events out of order = those that must move to sort the stream (n - longest sorted run)
    tails: list[str] = []
    for e in events:
        i = bisect.bisect_right(tails, e["occurred_at"])
        tails[i : i + 1] = [e["occurred_at"]]
    out_of_order = len(events) - len(tails)
    assert 0.005 * len(events) < out_of_order <= 0.05 * len(events)
    started: set[str] = set()
    early = Counter()
    for e in events:
        if e["type"] == "contact.started":
            started.add(e["contact_id"])
        elif e["type"].startswith("contact.") and e["contact_id"] not in started:
            early[e["type"]] += 1
    assert early["contact.ended"] > 0  # an ended before its started


def test_every_journey_scores_in_the_core_what_it_was_planned_to(big: Replayed) -> None:
    journeys = big.sim.journeys
    assert len(big.effort) == len(journeys)  # inferred cases joined as meant: one case per journey
    for j in journeys:
        assert big.effort[j.case_id] == j.effort, j
        lo, hi = BANDS[j.profile]
        assert lo <= j.effort <= hi, j


def test_the_journey_mix_looks_like_a_contact_centre(big: Replayed) -> None:
    journeys = big.sim.journeys
    kinds = Counter(j.kind for j in journeys)
    assert set(kinds) == set(KINDS)
    assert 0.50 < kinds["easy"] / len(journeys) < 0.60
    assert 0.15 < sum(j.profile == "high" for j in journeys) / len(journeys) < 0.25
    events = big.sim.events
    starts = [e for e in events if e["type"] == "contact.started"]
    channels = Counter(e["channel"] for e in starts)
    assert set(channels) == set(CONTACT_CHANNELS)
    assert {c for c, _ in channels.most_common(3)} == {"phone", "chat", "email"}
    assert 0.10 < sum("case_id" not in e for e in starts) / len(starts) < 0.20
    agents = {e["agent_id"] for e in starts}
    assert all(a.startswith(f"agent-{e['team_id']}-") for e in starts for a in [e["agent_id"]])
    assert 30 <= len(agents) <= 50
    attempts = [e for e in events if e["type"] == "self_service.failed"]
    assert sum("case_id" not in e for e in attempts) / len(attempts) > 0.5
    surveys = [e for e in events if e["type"] == "survey.responded"]
    assert 0.35 < len(surveys) / len(journeys) < 0.45
    assert 0.01 < sum("contact_id" not in s for s in surveys) / len(surveys) < 0.08
    assert all("channel" in s and "team_id" in s for s in surveys if "contact_id" not in s)
    assert any(set(s) >= {"nps", "ces", "csat"} for s in surveys)
    assert any("nps" in s and "ces" not in s and "csat" not in s for s in surveys)
    assert any("comment" in s for s in surveys)
    assert any(e["type"] == "case.resolved" and e["proactive"] for e in events)
    assert any(e["type"] == "contact.ended" and e.get("scripted") for e in events)


def test_high_effort_cases_are_much_more_often_detractors(big: Replayed) -> None:
    by_effort: dict[str, list[dict]] = defaultdict(list)
    for s in big.sim.events:
        if s["type"] == "survey.responded" and "contact_id" in s:
            e = big.effort[big.case_of_survey(s)]
            by_effort["high" if e >= 60 else "low" if e < 30 else "medium"].append(s)
    high, low = by_effort["high"], by_effort["low"]
    assert len(high) > 200 and len(low) > 500

    def detractors(surveys: list[dict]) -> float:
        scored = [s["nps"] for s in surveys if "nps" in s]
        return sum(n <= 6 for n in scored) / len(scored)

    assert detractors(high) > 0.6
    assert detractors(low) < 0.15
    assert detractors(high) - detractors(low) > 0.4
    assert mean(s["ces"] for s in high if "ces" in s) < 3.5 < 5.5 < mean(s["ces"] for s in low if "ces" in s)
    assert mean(s["csat"] for s in high if "csat" in s) < 3 < 4 < mean(s["csat"] for s in low if "csat" in s)


def test_high_effort_journeys_have_high_effort_and_low_effort_ones_low(big: Replayed) -> None:
    by_profile = defaultdict(list)
    for j in big.sim.journeys:
        by_profile[j.profile].append(big.effort[j.case_id])
    assert mean(by_profile["high"]) >= 65
    assert mean(by_profile["low"]) < 5
    assert 30 <= mean(by_profile["medium"]) < 60


def test_customers_with_a_high_effort_case_churn_much_more_often(big: Replayed) -> None:
    events = big.sim.events
    churned = {e["customer_id"] for e in events if e["type"] == "customer.churned"}
    customers = set(big.states)
    strained = {cid for cid, state in big.states.items() if any(big.effort[case_id] >= 60 for case_id in state.cases)}
    rate_strained = len(churned & strained) / len(strained)
    rate_others = len(churned - strained) / len(customers - strained)
    assert rate_strained > 0.4
    assert rate_strained - rate_others > 0.25


def test_a_churned_customer_has_no_further_journeys(big: Replayed) -> None:
    churned_at: dict[str, str] = {}
    last_at: dict[str, str] = defaultdict(str)
    for e in big.sim.events:
        if e["type"] == "customer.churned":
            assert e["customer_id"] not in churned_at
            churned_at[e["customer_id"]] = e["occurred_at"]
        last_at[e["customer_id"]] = max(last_at[e["customer_id"]], e["occurred_at"])
    assert churned_at
    assert all(last_at[c] == t for c, t in churned_at.items())


def test_simulate_out_writes_the_same_bytes_twice(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(feed, "_now", lambda: datetime(2026, 11, 25, 10, 42, tzinfo=UTC))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["simulate", "--customers", "60", "--out", str(a)]) == 0
    assert main(["simulate", "--customers", "60", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()
    assert json.loads(lines[-1])["occurred_at"] == "2026-11-25T10:00:00Z"  # the last full hour
    summary = capsys.readouterr().out.splitlines()
    assert summary[0] == f"wrote to {a}: " + summary[1].removeprefix(f"wrote to {b}: ")
    assert summary[0].startswith(f"wrote to {a}: {len(lines)} events, 60 customers, ")
    assert "journeys (easy " in summary[0]


def test_simulate_out_with_start_and_duration_writes_rate_times_duration_events(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    args = ["simulate", "--customers", "100", "--rate", "50", "--duration", "4", "--seed", "5"]
    assert main([*args, "--start", "2026-03-02T09:00:00Z", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 200
    assert json.loads(lines[0])["event_id"] == "sim-5-0"
    assert json.loads(lines[0])["occurred_at"] >= "2026-03-02T09:00:00Z"
    full = generate(100, seed=5, seconds_per_event=3600 / 50, start_us=START)
    assert lines == list(full.lines(200))
