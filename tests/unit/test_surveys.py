"""NPS, its interval and z-test, CES/CSAT, time buckets and the nps.drop rule, against hand-computed values."""

from __future__ import annotations

import math
import random

import pytest

from streams.rules import Rules
from streams.surveys import (
    DropCheck,
    DropState,
    MeanCounts,
    NpsCounts,
    SurveyAnswer,
    buckets_of,
    cells,
    cover,
    drop_windows,
    in_window,
    parse_segment,
    window,
    z_drop,
)
from streams.times import DAY, HOUR, MINUTE

APPROX = {"rel": 1e-12, "abs": 1e-12}


def figures(p: int, a: int, d: int) -> dict:
    return NpsCounts(p, a, d).as_dict()


def test_no_answers_give_a_null_nps_and_the_prior_interval() -> None:
    # n' = 3, p' = d' = 0.25 → c = 0, se = 100·√(0.5/3) = 40.8248..., margin = 1.96·se
    f = figures(0, 0, 0)
    assert f["n"] == 0 and f["nps"] is None
    assert f["margin_of_error"] == pytest.approx(80.01666493091714, **APPROX)
    assert (f["ci_low"], f["ci_high"]) == pytest.approx((-80.01666493091714, 80.01666493091714), **APPROX)


def test_one_promoter() -> None:
    # n' = 4, p' = 1.75/4, d' = 0.75/4 → c = 25, se = 100·√((0.625 − 0.0625)/4) = 37.5, margin 73.5
    f = figures(1, 0, 0)
    assert f["nps"] == 100
    assert f["margin_of_error"] == pytest.approx(73.5, **APPROX)
    assert (f["ci_low"], f["ci_high"]) == pytest.approx((-48.5, 98.5), **APPROX)


def test_all_promoters_cap_the_interval_at_100() -> None:
    # n = 10: n' = 13, p' = 10.75/13, d' = 0.75/13 → c = 76.923..., margin 29.420...
    f = figures(10, 0, 0)
    assert f["nps"] == 100
    assert f["margin_of_error"] == pytest.approx(29.420065978902976, **APPROX)
    assert f["ci_low"] == pytest.approx(47.503010944173944, **APPROX)
    assert f["ci_high"] == 100


def test_all_detractors_cap_the_interval_at_minus_100() -> None:
    f = figures(0, 0, 10)
    assert f["nps"] == -100
    assert f["ci_low"] == -100
    assert f["ci_high"] == pytest.approx(-47.503010944173944, **APPROX)


def test_fifty_promoters_twenty_six_passives_fourteen_detractors() -> None:
    # n = 90: nps = 100·36/90 = 40; n' = 93, p' = 50.75/93, d' = 14.75/93, c = 38.709...,
    # se = 100·√((p'+d' − (p'−d')²)/93) = 7.7213..., margin = 15.1338..., ci = [23.5758..., 53.8434...]
    f = figures(50, 26, 14)
    assert (f["n"], f["promoters"], f["passives"], f["detractors"]) == (90, 50, 26, 14)
    assert f["nps"] == pytest.approx(40.0, **APPROX)
    assert f["margin_of_error"] == pytest.approx(15.133821114336678, **APPROX)
    assert f["ci_low"] == pytest.approx(23.575856305018164, **APPROX)
    assert f["ci_high"] == pytest.approx(53.843498533691516, **APPROX)


def test_z_of_a_drop_uses_the_plain_standard_errors() -> None:
    # recent P10 A10 D20: nps −25, se = 100·√((0.75 − 0.0625)/40) = 13.110...
    # baseline P60 A30 D30: nps 25, se = 100·√((0.75 − 0.0625)/120) = 7.569...
    # z = −50 / √(13.110² + 7.569²) = −3.30289...
    assert z_drop(NpsCounts(10, 10, 20), NpsCounts(60, 30, 30)) == pytest.approx(-3.302891295379082, **APPROX)


def test_z_is_minus_infinity_when_both_standard_errors_are_zero_and_nps_fell() -> None:
    assert z_drop(NpsCounts(0, 0, 5), NpsCounts(5, 0, 0)) == -math.inf
    assert z_drop(NpsCounts(5, 0, 0), NpsCounts(5, 0, 0)) == 0


def test_ces_mean_and_share_of_five_to_seven() -> None:
    # answers 4, 5, 6, 7: mean 5.5, share 3/4; sample variance 5/3 → margin 1.96·√(5/12)
    f = MeanCounts(n=4, total=22, top=3, squares=126).as_dict()
    assert f == {"n": 4, "mean": 5.5, "share": 0.75, "margin_of_error": pytest.approx(1.96 * math.sqrt(5 / 12))}
    assert MeanCounts().as_dict() == {"n": 0, "mean": None, "share": None, "margin_of_error": None}


def test_a_survey_counts_once_per_segment_in_a_minute_an_hour_and_a_day() -> None:
    t = 20_000 * DAY + 5 * HOUR + 7 * MINUTE + 30_000_000
    assert buckets_of(t) == [("m", t // MINUTE), ("h", t // HOUR), ("d", 20_000)]
    got = cells(SurveyAnswer(t, ("all", "team:x"), nps=9, ces=6, csat=3))
    nps_cells = [c for c in got if c[0] == "nps"]
    assert len(nps_cells) == 6 and {c[3] for c in nps_cells} == {"p"}
    ces_day = sorted((c[3], c[4]) for c in got if c[0] == "ces" and c[1] == "all" and c[2][0] == "d")
    assert ces_day == [("n", 1), ("q", 36), ("s", 6), ("t", 1)]
    csat_day = sorted((c[3], c[4]) for c in got if c[0] == "csat" and c[1] == "all" and c[2][0] == "d")
    assert csat_day == [("n", 1), ("q", 9), ("s", 3)]  # 3 is not in CSAT's top share (4–5)


@pytest.mark.parametrize("seed", range(40))
def test_cover_takes_every_minute_of_a_window_exactly_once_with_few_buckets(seed: int) -> None:
    rng = random.Random(seed)
    a = rng.randrange(0, 10_000_000)
    b = a + rng.choice([1, 59, 61, 1439, 1441, 7 * 1440, 400 * 1440]) + rng.randrange(0, 3000)
    parts = cover(a, b)
    minutes = []
    for level, index in parts:
        size = {"m": 1, "h": 60, "d": 1440}[level]
        minutes.extend(range(index * size, (index + 1) * size))
    assert minutes == list(range(a + 1, b + 1))
    days = (b - a) // 1440
    assert len(parts) <= 59 + 23 + days + 23 + 59


def test_a_window_runs_over_event_time_to_the_minute() -> None:
    at = 100 * DAY + 10 * HOUR + 30 * MINUTE + 15_000_000  # 10:30:15
    win = window(at, 7 * DAY)
    assert in_window(at, win)
    assert in_window(at - 7 * DAY + MINUTE, win)
    assert not in_window(at - 7 * DAY, win)  # at − window is excluded
    assert not in_window(at + MINUTE, win)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("all", True), ("channel:chat", True), ("team:billing", True), ("agent:a-7", True), ("reason:refund", True),
     ("channel:fax", False), ("team:", False), ("region:eu", False), ("", False), ("All", False)],
)  # fmt: skip
def test_segments_are_checked(text: str, ok: bool) -> None:
    channels = ("phone", "chat", "email")
    if ok:
        assert parse_segment(text, channels) == text
    else:
        with pytest.raises(ValueError):
            parse_segment(text, channels)


def _check(base: dict | None = None, state: DropState | None = None, rules: Rules | None = None) -> DropCheck:
    rules = rules or Rules()
    return DropCheck("all", state or DropState(), base or {}, rules)


def _with_windows(check: DropCheck, ats: list[int], base: dict | None = None) -> DropCheck:
    for at in ats:
        for win in drop_windows(at, check.rules):
            check.base[win] = (base or {}).get(win, NpsCounts())
    return check


def test_nps_drop_fires_when_the_recent_week_is_significantly_below_the_four_weeks_before() -> None:
    rules = Rules()
    at0 = 1000 * DAY
    answers = [(at0 - 20 * DAY + i * HOUR, 10) for i in range(30)]  # baseline: 30 promoters
    answers += [(at0 - 2 * DAY + i * HOUR, 0) for i in range(30)]  # recent week: 30 detractors
    check = _with_windows(_check(rules=rules), [t for t, _ in answers])
    fired = [check.after(t, s) for t, s in answers]
    drops = [d for d in fired if d is not None]
    assert len(drops) == 1
    assert fired.index(drops[0]) == 59  # only once the recent week has 30 answers
    drop = drops[0]
    assert (drop.recent.n, drop.baseline.n, drop.recent.nps, drop.baseline.nps) == (30, 30, -100, 100)
    assert drop.z == -math.inf and drop.at == answers[-1][0]
    assert check.state.last_alert_at == drop.at


def test_nps_drop_needs_thirty_answers_in_each_window_and_a_significant_z() -> None:
    at0 = 1000 * DAY
    few = [(at0 - 20 * DAY + i * HOUR, 10) for i in range(29)] + [(at0 - DAY + i * HOUR, 0) for i in range(40)]
    check = _with_windows(_check(), [t for t, _ in few])
    assert [d for d in (check.after(t, s) for t, s in few) if d] == []
    # 30 and 30 but a small difference: recent 15P/15D (0) vs 16P/14D (6.7): z ≈ −0.26
    mild = [(at0 - 20 * DAY + i * HOUR, 10 if i < 16 else 0) for i in range(30)]
    mild += [(at0 - DAY + i * MINUTE, 10 if i < 15 else 0) for i in range(30)]
    check = _with_windows(_check(), [t for t, _ in mild])
    assert [d for d in (check.after(t, s) for t, s in mild) if d] == []


def test_after_a_drop_the_next_one_waits_24_hours_of_event_time() -> None:
    at0 = 1000 * DAY
    base = [(at0 - 20 * DAY + i * HOUR, 10) for i in range(40)]
    recent = [(at0 - 3 * DAY + i * 1800 * 1_000_000, 0) for i in range(100)]  # one every 30 minutes
    answers = base + recent
    check = _with_windows(_check(), [t for t, _ in answers])
    drops = [d for d in (check.after(t, s) for t, s in answers) if d]
    # the 30th recent answer fires; the next evaluation at or after +24 h is the 78th (30 min apart)
    assert [d.at for d in drops] == [recent[29][0], recent[77][0]]
    assert recent[77][0] == recent[29][0] + DAY


def test_the_rule_is_evaluated_at_the_latest_answer_time_seen_for_the_segment() -> None:
    at0 = 1000 * DAY
    state = DropState(latest_at=at0, last_alert_at=at0 - HOUR)  # a drop an hour ago
    check = _with_windows(_check(state=state), [at0])
    assert check.after(at0 - 5 * DAY, 0) is None  # an older answer: at stays at0, still cooling down
    assert check.state.latest_at == at0


def test_score_gauges_cover_all_channels_and_teams_agents_only_when_allowed_and_at_most_the_cap() -> None:
    from streams.queries import gauge_segments

    known = {"all", "channel:phone", "channel:chat", "team:b", "team:a", "agent:x", "reason:refund"}
    assert gauge_segments(known, agents=False, limit=200) == [
        "all",
        "channel:chat",
        "channel:phone",
        "team:a",
        "team:b",
    ]
    assert gauge_segments(known, agents=True, limit=200)[-1] == "agent:x"
    assert gauge_segments(known, agents=True, limit=3) == ["all", "channel:chat", "channel:phone"]
