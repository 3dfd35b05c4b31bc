"""NPS, CES and CSAT through the real broker: a few hundred surveys over 60 days across segments,
some naming contacts, some duplicated, some out of order; exact figures and exact alerts, checked
against a plain reference computation written here, independently of streams.surveys."""

from __future__ import annotations

import math
import random
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.harness import Worker, eid, ts, utcnow, wait_until

MIN = 60_000_000  # µs


def us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def build(seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    end = utcnow().replace(second=0) - timedelta(days=1)
    start = end - timedelta(days=60)
    contacts, surveys = [], []
    teams = {"alpha": ["al-1", "al-2"], "beta": ["be-1", "be-2"]}
    reasons = ["billing", "delivery"]
    for i in range(420):
        day = rng.uniform(0, 60)
        if any(abs(day - edge) < 0.05 for edge in (54, 33)):
            day += 0.1  # keep clear of now − 7d and now − 28d, where the score gauges' windows start
        t = start + timedelta(days=day, seconds=rng.randrange(0, 59))
        team = "alpha" if i % 2 else "beta"
        if team == "alpha" and day >= 53:
            nps = rng.choices([0, 3, 5, 6, 8, 9, 10], [3, 3, 2, 2, 1, 1, 1])[0]  # the last week goes wrong
        elif team == "alpha":
            nps = rng.choices([3, 6, 7, 8, 9, 10], [1, 1, 2, 2, 4, 5])[0]
        else:
            nps = rng.choices([2, 5, 7, 8, 9, 10], [1, 2, 2, 2, 3, 3])[0]
        cust = f"sv-{i}"
        survey: dict[str, Any] = {"event_id": eid(), "type": "survey.responded", "occurred_at": ts(t),
                                  "customer_id": cust, "nps": nps}  # fmt: skip
        if rng.random() < 0.5:
            survey["ces"] = rng.randint(1, 7)
        if rng.random() < 0.4:
            survey["csat"] = rng.randint(1, 5)
        channel, agent, reason = rng.choice(["chat", "phone"]), rng.choice(teams[team]), rng.choice(reasons)
        if rng.random() < 0.6:  # names its contact: channel, team, agent and reason come from it
            cid = f"{cust}-c"
            contacts.append({"event_id": eid(), "type": "contact.started", "occurred_at": ts(t - timedelta(hours=2)),
                             "customer_id": cust, "contact_id": cid, "channel": channel, "case_id": f"{cust}-k",
                             "reason": reason, "agent_id": agent, "team_id": team})  # fmt: skip
            survey["contact_id"] = cid
            if rng.random() < 0.3:
                survey["channel"] = "email"  # its own field wins over the contact's
                channel = "email"
        else:
            survey.update(channel=channel, team_id=team, agent_id=agent, reason=reason)
        segs = ["all", f"channel:{channel}", f"team:{team}", f"agent:{agent}", f"reason:{reason}"]
        surveys.append((survey, segs))
    surveys.sort(key=lambda s: s[0]["occurred_at"])
    # some out of order: swap neighbours a few places apart
    for _ in range(40):
        i = rng.randrange(0, len(surveys) - 5)
        j = i + rng.randint(1, 5)
        surveys[i], surveys[j] = surveys[j], surveys[i]
    arrival = [s for s, _ in surveys]
    duplicates = [dict(s) for s, _ in rng.sample(surveys, 25)]
    return {"end": end, "contacts": contacts, "surveys": surveys, "records": arrival + duplicates}


def minute(t_us: int) -> int:
    return t_us // MIN


def in_window(occ: int, at: int, length: int) -> bool:
    return minute(at - length) < minute(occ) <= minute(at)


def nps_reference(answers: list[int]) -> dict[str, Any]:
    n = len(answers)
    p = sum(1 for a in answers if a >= 9)
    d = sum(1 for a in answers if a <= 6)
    n1 = n + 3
    pp, dd = (p + 0.75) / n1, (d + 0.75) / n1
    c = 100 * (pp - dd)
    moe = 1.96 * 100 * math.sqrt((pp + dd - (pp - dd) ** 2) / n1)
    return {"n": n, "promoters": p, "passives": n - p - d, "detractors": d,
            "nps": 100 * (p - d) / n if n else None, "margin_of_error": moe,
            "ci_low": max(-100, c - moe), "ci_high": min(100, c + moe)}  # fmt: skip


def drops_reference(surveys: list[tuple[dict, list[str]]]) -> list[tuple[str, int]]:
    """nps.drop evaluated after every answer in arrival order, as §5 says, with plain SEs."""
    seen: list[tuple[int, int, list[str]]] = []
    latest: dict[str, int] = {}
    last: dict[str, int] = {}
    out = []
    week, four = 7 * 86400 * 10**6, 28 * 86400 * 10**6
    for s, segs in surveys:
        occ = us(datetime.fromisoformat(s["occurred_at"].replace("Z", "+00:00")))
        seen.append((occ, s["nps"], segs))
        for seg in segs:
            latest[seg] = max(latest.get(seg, occ), occ)
            at = latest[seg]
            if seg in last and at < last[seg] + 86400 * 10**6:
                continue
            recent = [a for o, a, g in seen if seg in g and in_window(o, at, week)]
            base = [a for o, a, g in seen if seg in g and in_window(o, at - week, four)]
            if len(recent) < 30 or len(base) < 30:
                continue
            r, b = nps_reference(recent), nps_reference(base)
            if r["nps"] >= b["nps"]:
                continue

            def se(x: list[int]) -> float:
                p = sum(1 for a in x if a >= 9) / len(x)
                d = sum(1 for a in x if a <= 6) / len(x)
                return 100 * math.sqrt((p + d - (p - d) ** 2) / len(x))

            se_all = math.sqrt(se(recent) ** 2 + se(base) ** 2)
            z = (r["nps"] - b["nps"]) / se_all if se_all else -math.inf
            if z <= -1.96:
                out.append((seg, at))
                last[seg] = at
    return out


@pytest.fixture(scope="module")
def fed() -> Any:
    data = build()
    # one partition: Kafka orders records only within a partition, and the exact sequence of
    # nps.drop evaluations follows the order the worker reads the surveys in
    w = Worker("surveys", env={"EFFORTPULSE_TOPIC_PARTITIONS": "1", "EFFORTPULSE_SCORE_GAUGES_INTERVAL": "1s"}).start()
    try:
        w.produce(data["contacts"])
        wait_until(lambda: w.customer(data["contacts"][-1]["customer_id"]), what="contacts applied")
        w.produce(data["records"])
        last = data["surveys"][-1][0]

        def applied() -> bool:
            code, doc = w.http("GET", "/nps?segment=all&window=400d")
            return code == 200 and doc["n"] == len(data["surveys"]) and w.customer(last["customer_id"]) is not None

        wait_until(applied, timeout=90, what="every survey counted")
        yield w, data
    finally:
        w.close()


def test_nps_ces_and_csat_match_a_plain_count_for_several_segments_windows_and_times(fed: Any) -> None:
    w, data = fed
    end = data["end"]
    answers = [
        (us(datetime.fromisoformat(s["occurred_at"].replace("Z", "+00:00"))), s, segs) for s, segs in data["surveys"]
    ]
    queries = [("all", "7d", end), ("all", "60d", end), ("team:alpha", "7d", end), ("team:alpha", "28d", end - timedelta(days=7)),
               ("channel:chat", "30d", end - timedelta(days=10, minutes=7)), ("channel:email", "14d", end),
               ("reason:billing", "45d", end - timedelta(hours=13)), ("agent:be-2", "21d", end), ("team:beta", "1d", end)]  # fmt: skip
    for segment, window, at in queries:
        length = int(window[:-1]) * 86400 * 10**6
        picked = [s for occ, s, segs in answers if segment in segs and in_window(occ, us(at), length)]
        code, got = w.http("GET", f"/nps?segment={segment}&window={window}&at={ts(at)}")
        assert code == 200, got
        want = nps_reference([s["nps"] for s in picked])
        assert (got["segment"], got["window"], got["at"]) == (segment, window, ts(at))
        for k, v in want.items():
            assert got[k] == (pytest.approx(v, rel=1e-9, abs=1e-9) if v is not None else None), (segment, window, k)
        for metric, top in (("ces", 5), ("csat", 4)):
            scores = [s[metric] for s in picked if metric in s]
            code, got = w.http("GET", f"/{metric}?segment={segment}&window={window}&at={ts(at)}")
            assert code == 200
            assert got["n"] == len(scores)
            assert got["mean"] == (pytest.approx(sum(scores) / len(scores)) if scores else None)
            assert got["share"] == (pytest.approx(sum(1 for x in scores if x >= top) / len(scores)) if scores else None)


def test_every_detractor_gets_one_alert_due_48_hours_later(fed: Any) -> None:
    w, data = fed
    detractors = {s["event_id"]: (s, segs) for s, segs in data["surveys"] if s["nps"] <= 6}
    alerts = [a for a in w.read("alerts", idle=3) if a["type"] == "nps.detractor"]
    assert sorted(a["trigger_event_id"] for a in alerts) == sorted(detractors)
    for a in alerts:
        s, segs = detractors[a["trigger_event_id"]]
        occ = datetime.fromisoformat(s["occurred_at"].replace("Z", "+00:00"))
        assert a["customer_id"] == s["customer_id"]
        assert a["severity"] == ("critical" if s["nps"] <= 3 else "warning")
        assert a["score"] == s["nps"]
        assert a["occurred_at"] == s["occurred_at"]
        assert a["due_at"] == ts(occ + timedelta(hours=48))
        assert a["segments"] == segs[1:]


def test_nps_drops_fire_exactly_where_a_sequential_evaluation_finds_them(fed: Any) -> None:
    w, data = fed
    expected = drops_reference(data["surveys"])
    records = [(k, a) for k, a in w.read_records("alerts", idle=3) if a["type"] == "nps.drop"]
    got = sorted(
        (a["segment"], us(datetime.fromisoformat(a["occurred_at"].replace("Z", "+00:00")))) for _, a in records
    )
    assert got == sorted(expected)
    assert any(seg == "team:alpha" for seg, _ in expected)
    for key, a in records:
        assert key == f"segment:{a['segment']}".encode()
        assert a["customer_id"] is None and a["segments"] == [a["segment"]]
        assert a["score"] < a["threshold"]


def test_bad_query_parameters_get_400_with_the_reason(fed: Any) -> None:
    w, _ = fed
    for query, words in [("segment=region:eu", "segment"), ("segment=channel:fax", "channel"),
                         ("window=3x", "window"), ("window=500d", "retention"), ("at=yesterday", "RFC 3339"),
                         ("at=2026-11-20T10:00:00", "RFC 3339")]:  # fmt: skip
        for path in ("/nps", "/ces", "/csat"):
            code, doc = w.http("GET", f"{path}?{query}")
            assert code == 400 and words in doc["error"], (path, query, doc)


def test_prometheus_shows_nps_ces_and_csat_for_all_channels_and_teams_but_not_agents(fed: Any) -> None:
    w, data = fed

    def gauges() -> dict[tuple[str, str, str], float]:
        _, text = w.http("GET", "/metrics")
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(effortpulse_(?:nps|ces|csat)\w*)\{segment="([^"]+)",window="([^"]+)"\} (\S+)$', line)
            if m:
                out[(m[1], m[2], m[3])] = float(m[4])
        return out

    got = wait_until(
        lambda: (g := gauges()) and ("effortpulse_nps", "team:alpha", "28d") in g and g, what="score gauges"
    )
    segments = {seg for _, seg, _ in got}
    assert segments == {"all", "channel:chat", "channel:phone", "channel:email", "team:alpha", "team:beta"}
    code, want = w.http("GET", "/nps?segment=team:alpha&window=28d")
    assert got[("effortpulse_nps_responses", "team:alpha", "28d")] == want["n"]
    assert got[("effortpulse_nps", "team:alpha", "28d")] == pytest.approx(want["nps"])
    assert got[("effortpulse_nps_margin_of_error", "team:alpha", "28d")] == pytest.approx(want["margin_of_error"])
    code, want = w.http("GET", "/ces?segment=all&window=7d")
    assert got[("effortpulse_ces_mean", "all", "7d")] == pytest.approx(want["mean"])
    assert got[("effortpulse_ces_responses", "all", "7d")] == want["n"]
