"""Insights aggregates: what a case contributes, and the increments when it changes."""

from __future__ import annotations

from streams import insights
from streams.rules import DRIVERS
from streams.times import DAY, HOUR, to_us
from tests.unit.builders import BASE, HOURS, RULES, apply_all, ended, started, transferred


def contribution_of(events, case_id):
    state, _ = apply_all(events)
    return insights.contribution(state.cases[case_id], state.contacts, RULES)


def test_a_case_contributes_its_counts_effort_and_drivers_in_every_segment_it_touched() -> None:
    c = contribution_of(
        [started("c1", "chat", t=0, case_id="K", reason="refund", team_id="billing", agent_id="a1"),
         ended("c1", False, t=60),
         started("c2", "email", t=2 * HOURS, case_id="K", team_id="tech", agent_id="a2"),
         ended("c2", True, t=3 * HOURS)],
        "K",
    )  # fmt: skip
    assert c.first_at == to_us(BASE)
    assert c.segments == {"all", "channel:chat", "channel:email", "team:billing", "team:tech", "agent:a1", "agent:a2",
                          "reason:refund"}  # fmt: skip
    assert dict(c.stats) == {"cases": 1, "contacts": 2, "resolved": 1, "repeat": 1, "effort": 40,
                             "d:repeat_contact": 15, "d:channel_switch": 15, "d:unresolved": 10,
                             "r:refund:cases": 1, "r:refund:effort": 40}  # fmt: skip


def test_a_case_without_a_contact_contributes_nothing() -> None:
    from streams.cases import Case

    assert insights.contribution(Case("K"), {}, RULES) is None


def test_a_change_takes_the_old_contribution_out_and_puts_the_new_one_in() -> None:
    first = [started("c1", "phone", t=0, case_id="K", team_id="billing")]
    before = contribution_of(first, "K")
    after = contribution_of(first + [transferred("c1", t=60, to_team_id="tech")], "K")
    cells = insights.delta(before, after)
    hour, day = ("h", to_us(BASE) // HOUR), ("d", to_us(BASE) // DAY)
    by = {(seg, b): stats for seg, b, stats in cells}
    for b in (hour, day):
        assert by[("all", b)] == {"effort": 10, "d:transfer": 10}  # still one case, 10 more points
        assert by[("team:tech", b)] == dict(after.stats)  # it joins tech whole
        assert by[("team:tech", b)]["cases"] == 1
    assert insights.driver_growth(before, after) == {"transfer": 10}
    assert insights.delta(after, after) == []


def test_answer_rates_and_top_reasons() -> None:
    stats = {"cases": 4, "contacts": 6, "resolved": 2, "fcr": 1, "repeat": 2, "effort": 100,
             "d:transfer": 30, "r:refund:cases": 3, "r:refund:effort": 90, "r:delivery:cases": 1,
             "r:delivery:effort": 10}  # fmt: skip
    got = insights.answer(stats, ["delivery", "refund", "other"])
    assert (got["fcr_rate"], got["repeat_contact_rate"], got["mean_effort"]) == (0.5, 0.5, 25.0)
    assert got["drivers"] == {d: (30 if d == "transfer" else 0) for d in DRIVERS}
    assert got["top_reasons"] == [{"reason": "refund", "cases": 3, "mean_effort": 30.0},
                                  {"reason": "delivery", "cases": 1, "mean_effort": 10.0}]  # fmt: skip
    assert insights.answer({}, [])["fcr_rate"] is None
