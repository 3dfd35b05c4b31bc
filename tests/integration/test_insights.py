"""/insights through the real broker: exact figures for a hand-built set of cases."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.integration.harness import BIN, ROOT, Worker, event, timedelta, ts, utcnow, wait_until

ZERO = {"repeat_contact": 0, "channel_switch": 0, "transfer": 0, "repeated_info": 0, "unresolved": 0,
        "policy_friction": 0, "hassle": 0, "scripted_service": 0, "self_service_failure": 0}  # fmt: skip


@pytest.fixture(scope="module")
def fed() -> Any:
    now = utcnow().replace(minute=30)
    d = timedelta
    e = []
    # A: one phone contact, billing, resolved — first-contact resolution (2 days ago)
    e += [
        event(
            now - d(days=2),
            "contact.started",
            "ia1",
            contact_id="a1",
            channel="phone",
            case_id="A",
            reason="refund",
            team_id="billing",
            agent_id="b1",
        ),
        event(now - d(days=2) + d(minutes=5), "contact.ended", "ia1", contact_id="a1", resolved=True),
    ]
    # B: chat (billing) unresolved, then email (tech) resolved — 40 points (5 days ago)
    e += [
        event(
            now - d(days=5),
            "contact.started",
            "ia2",
            contact_id="b1",
            channel="chat",
            case_id="B",
            reason="refund",
            team_id="billing",
            agent_id="b2",
        ),
        event(now - d(days=5) + d(minutes=9), "contact.ended", "ia2", contact_id="b1", resolved=False),
        event(
            now - d(days=4),
            "contact.started",
            "ia2",
            contact_id="b2",
            channel="email",
            case_id="B",
            team_id="tech",
            agent_id="t1",
        ),
        event(now - d(days=4) + d(hours=1), "contact.ended", "ia2", contact_id="b2", resolved=True),
    ]
    # C: phone (tech) with two transfers, still open — 20 points (10 days ago)
    e += [
        event(
            now - d(days=10),
            "contact.started",
            "ia3",
            contact_id="c1",
            channel="phone",
            case_id="C",
            reason="delivery",
            team_id="tech",
            agent_id="t2",
        )
    ]
    e += [event(now - d(days=10) + d(minutes=i), "contact.transferred", "ia3", contact_id="c1") for i in (1, 2)]
    # D: one chat contact, billing, resolved (20 days ago)
    e += [event(now - d(days=20), "contact.started", "ia4", contact_id="d1", channel="chat", case_id="D",
                reason="delivery", team_id="billing", agent_id="b1"),
          event(now - d(days=20) + d(minutes=3), "contact.ended", "ia4", contact_id="d1", resolved=True)]  # fmt: skip
    w = Worker("insights").start()
    try:
        w.produce(e)
        wait_until(lambda: all(w.customer(c) for c in ("ia1", "ia2", "ia3", "ia4")) and w.customer("ia2")["events"] == 4,
                   what="all cases applied")  # fmt: skip
        yield w, now
    finally:
        w.close()


def ask(w: Worker, query: str) -> dict[str, Any]:
    code, doc = w.http("GET", f"/insights?{query}")
    assert code == 200, doc
    return doc


def test_all_over_seven_days(fed: Any) -> None:
    w, now = fed
    doc = ask(w, f"segment=all&window=7d&at={ts(now)}")
    assert doc == {
        "segment": "all", "window": "7d", "at": ts(now), "cases": 2, "contacts": 3,
        "fcr_rate": 0.5, "repeat_contact_rate": 0.5, "mean_effort": 20.0,
        "drivers": {**ZERO, "repeat_contact": 15, "channel_switch": 15, "unresolved": 10},
        "top_reasons": [{"reason": "refund", "cases": 2, "mean_effort": 20.0}],
    }  # fmt: skip


def test_a_case_that_spans_two_teams_counts_fully_in_both(fed: Any) -> None:
    w, now = fed
    billing = ask(w, f"segment=team:billing&window=30d&at={ts(now)}")
    assert (billing["cases"], billing["contacts"]) == (3, 4)  # A, B (both of its contacts), D
    assert billing["fcr_rate"] == pytest.approx(2 / 3)
    assert billing["repeat_contact_rate"] == pytest.approx(1 / 3)
    assert billing["mean_effort"] == pytest.approx(40 / 3)
    tech = ask(w, f"segment=team:tech&window=14d&at={ts(now)}")
    assert (tech["cases"], tech["contacts"], tech["fcr_rate"], tech["repeat_contact_rate"], tech["mean_effort"]) == (
        2, 3, 0.0, 0.5, 30.0)  # fmt: skip
    assert tech["drivers"] == {**ZERO, "repeat_contact": 15, "channel_switch": 15, "unresolved": 10, "transfer": 20}
    assert tech["top_reasons"] == [{"reason": "refund", "cases": 1, "mean_effort": 40.0},
                                   {"reason": "delivery", "cases": 1, "mean_effort": 20.0}]  # fmt: skip


def test_reason_channel_and_earlier_at(fed: Any) -> None:
    w, now = fed
    delivery = ask(w, f"segment=reason:delivery&window=30d&at={ts(now)}")
    assert (delivery["cases"], delivery["fcr_rate"], delivery["mean_effort"]) == (2, 1.0, 10.0)
    email = ask(w, f"segment=channel:email&window=7d&at={ts(now)}")
    assert (email["cases"], email["contacts"], email["mean_effort"]) == (1, 2, 40.0)
    earlier = ask(w, f"segment=all&window=7d&at={ts(now - timedelta(days=3))}")
    assert (earlier["cases"], earlier["fcr_rate"]) == (1, 0.0)  # only B; A starts after `at`
    empty = ask(w, f"segment=team:nobody&window=7d&at={ts(now)}")
    assert (empty["cases"], empty["fcr_rate"], empty["repeat_contact_rate"], empty["mean_effort"]) == (
        0,
        None,
        None,
        None,
    )


def test_the_cli_gives_the_same_answer(fed: Any) -> None:
    w, now = fed
    r = subprocess.run([BIN / "effortpulse", "insights", "--segment", "team:tech", "--window", "14d", "--at", ts(now)],
                       capture_output=True, text=True, env=w.env, cwd=ROOT, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ask(w, f"segment=team:tech&window=14d&at={ts(now)}")
