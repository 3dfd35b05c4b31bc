"""Churn risk: one test per reason, the fixed points of the issue, alerts, and the quality figures."""

from __future__ import annotations

import json
import math

import pytest

from streams import churn
from streams.evaluate import evaluate
from streams.journey import CustomerState
from streams.rules import Rules
from streams.times import to_us
from tests.unit.builders import (
    BASE,
    CUSTOMER,
    DAYS,
    HOURS,
    RULES,
    apply_all,
    at,
    case_reopened,
    ended,
    event,
    started,
    transferred,
)


def survey(t: float = 0, **scores) -> object:
    return event("survey.responded", t, **scores)


def risk_after(events, at_t: float | None = None, rules: Rules = RULES) -> churn.Risk:
    state, _ = apply_all(events, rules)
    when = to_us(BASE) + int(at_t * 1e6) if at_t is not None else state.last_event_at
    return churn.assess(state, when, rules)


def contributions(r: churn.Risk) -> dict[str, float]:
    return {str(x["driver"]): float(x["contribution"]) for x in r.reasons}


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def transfers(contact: str, n: int, t0: float = 0, case: str = "K") -> list:
    return [started(contact, "phone", t=t0, case_id=case)] + [
        transferred(contact, t=t0 + 60 * i) for i in range(1, n + 1)
    ]


def test_a_customer_we_know_nothing_about_has_the_base_risk() -> None:
    assert churn.assess(CustomerState(CUSTOMER), to_us(BASE), RULES).risk == pytest.approx(sigmoid(-2.2))


def test_reason_open_case_effort_weighs_the_worst_open_case() -> None:
    r = risk_after(transfers("c1", 5))  # open, 1 contact, 5 transfers: effort 50
    assert contributions(r)["open_case_effort"] == pytest.approx(2.5 * 0.5)
    assert "open case K with effort 50" in next(x["detail"] for x in r.reasons if x["driver"] == "open_case_effort")


def test_reason_recent_case_effort_counts_resolved_cases_of_the_lookback() -> None:
    events = transfers("c1", 4) + [ended("c1", True, t=600)]
    assert contributions(risk_after(events))["recent_case_effort"] == pytest.approx(1.2 * 0.4)
    assert "recent_case_effort" not in contributions(risk_after(events, at_t=181 * DAYS))


def test_reason_unresolved_cases_counts_open_cases_up_to_three() -> None:
    events = [started(f"c{i}", "chat", t=i * 8 * DAYS, case_id=f"K{i}") for i in range(5)]
    assert contributions(risk_after(events))["unresolved_cases"] == pytest.approx(0.4 * 3)


def test_reason_second_failure_after_a_recovered_one() -> None:
    first = transfers("c1", 5, case="K1") + [ended("c1", True, t=600)]  # failure (50), recovered
    second = transfers("c2", 4, t0=10 * DAYS, case="K2")  # failure again (40)
    assert "second_failure" not in contributions(risk_after(first))
    assert contributions(risk_after(first + second))["second_failure"] == pytest.approx(0.8)
    reopened = [started("c3", "chat", t=20 * DAYS, case_id="K3"), ended("c3", True, t=20 * DAYS + 60),
                case_reopened("K3", t=21 * DAYS)]  # fmt: skip
    assert contributions(risk_after(first + reopened))["second_failure"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("nps", "driver", "coef"), [(3, "detractor", 1.4), (7, "passive", 0.3), (10, "promoter", -0.8)]
)
def test_reason_latest_nps_category(nps: int, driver: str, coef: float) -> None:
    r = risk_after([survey(nps=nps)])
    assert contributions(r) == {driver: pytest.approx(coef)}
    assert r.risk == pytest.approx(sigmoid(-2.2 + coef))


def test_the_latest_nps_answer_by_event_time_decides() -> None:
    assert "detractor" in contributions(risk_after([survey(t=100, nps=2), survey(t=50, nps=10)]))


def test_reason_hard_effort_answer_and_poor_csat() -> None:
    c = contributions(risk_after([survey(ces=1, csat=1)]))
    assert c == {"hard_effort_answer": pytest.approx(0.6), "poor_csat": pytest.approx(0.4)}
    c = contributions(risk_after([survey(ces=3, csat=2)]))
    assert c == {"hard_effort_answer": pytest.approx(0.6 / 3), "poor_csat": pytest.approx(0.4 / 2)}


def test_reason_recent_contact_decays_with_time_since_the_last_contact() -> None:
    events = [started("c1", "chat", t=0, case_id="K"), ended("c1", True, t=60)]
    assert contributions(risk_after(events, at_t=0))["recent_contact"] == pytest.approx(0.3)
    assert contributions(risk_after(events, at_t=30 * DAYS))["recent_contact"] == pytest.approx(0.3 / math.e)


@pytest.mark.parametrize("csat", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("ces", [1, 4, 7])
def test_satisfaction_alone_never_lowers_the_risk(csat: int, ces: int) -> None:
    base = transfers("c1", 3)
    before = risk_after(base).risk
    after = risk_after(base + [survey(t=300, csat=csat, ces=ces)], at_t=180).risk
    assert after >= before


def test_one_effortless_resolved_case_and_nps_9_is_below_0_2() -> None:
    events = [started("c1", "phone", t=0, case_id="K"), ended("c1", True, t=300), survey(t=3600, nps=9)]
    r = risk_after(events)
    assert r.risk < 0.2
    assert r.risk == pytest.approx(sigmoid(-2.2 - 0.8 + 0.3 * math.exp(-(3600 / 86400) / 30)))


def test_an_open_case_of_effort_80_and_an_nps_of_3_is_at_least_0_7_and_alerts() -> None:
    events = transfers("c1", 8) + [survey(t=900, nps=3)]
    state, alerts = apply_all(events)
    r = churn.assess(state, state.last_event_at, RULES)
    assert r.risk >= 0.7
    churn_alerts = [a for a in alerts if a.type == "churn.risk"]
    assert churn_alerts and churn_alerts[-1].score >= 0.7
    assert [x["driver"] for x in churn_alerts[-1].reasons][:2] == ["open_case_effort", "detractor"]


def test_churn_alerts_once_per_severity_per_seven_days_critical_covers_warning() -> None:
    rules = Rules()
    assert churn.crossed(0.9, 0, {}, rules) == "critical"
    assert churn.crossed(0.9, 6 * DAYS * 10**6, {"critical": 0}, rules) is None
    assert churn.crossed(0.9, 7 * DAYS * 10**6, {"critical": 0}, rules) == "critical"
    assert churn.crossed(0.75, DAYS * 10**6, {"critical": 0}, rules) is None
    assert churn.crossed(0.75, 0, {}, rules) == "warning"
    assert churn.crossed(0.69, 0, {}, rules) is None


def test_alert_ids_are_deterministic_and_reasons_add_up_to_the_score() -> None:
    events = transfers("c1", 9) + [survey(t=900, nps=1, ces=1)]
    _, first = apply_all(events)
    _, again = apply_all(events)
    assert [a.alert_id for a in first] == [a.alert_id for a in again]
    alert = [a for a in first if a.type == "churn.risk"][-1]
    logit = -2.2 + sum(float(r["contribution"]) for r in alert.reasons)
    assert alert.score == pytest.approx(sigmoid(logit))


def test_roc_auc_of_a_hand_computed_example() -> None:
    # positives 0.35, 0.8 against negatives 0.1, 0.4: pairs won 1, 0, 1, 1 → 3/4
    assert churn.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # a tie counts half: positives 0.5, 0.9 against negatives 0.5, 0.2 → (0.5 + 1 + 1 + 1)/4
    assert churn.roc_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == 0.875
    assert churn.roc_auc([0.3, 0.4], [1, 1]) is None


def test_brier_precision_and_recall() -> None:
    assert churn.brier([0.9, 0.2], [1, 0]) == pytest.approx((0.01 + 0.04) / 2)
    assert churn.precision_recall([0.9, 0.75, 0.2, 0.1], [1, 0, 1, 0], 0.7) == (0.5, 0.5)


def test_evaluate_takes_a_churners_risk_just_before_the_label_and_others_at_the_end() -> None:
    def line(t: float, type_: str, cust: str, **kw) -> str:
        return json.dumps({"event_id": f"{cust}-{type_}-{t}", "type": type_, "occurred_at": at(t),
                           "customer_id": cust, **kw})  # fmt: skip

    lines = [line(0, "contact.started", "a", contact_id="a1", channel="chat", case_id="ka")]
    lines += [line(60 * i, "contact.transferred", "a", contact_id="a1") for i in range(1, 11)]  # effort 100
    lines += [line(3 * HOURS, "customer.churned", "a"), "{not json"]
    lines += [line(0, "contact.started", "b", contact_id="b1", channel="phone", case_id="kb"),
              line(300, "contact.ended", "b", contact_id="b1", resolved=True)]  # fmt: skip
    got = evaluate(lines, RULES)
    risk_a = sigmoid(-2.2 + 2.5 * 1.0 + 0.4 + 0.3 * math.exp(-(600 / 86400) / 30))  # at its last transfer
    risk_b = sigmoid(-2.2 + 0.3 * math.exp(-((3 * HOURS - 0) / 86400) / 30))  # at the end of the file
    assert got["customers"] == 2 and got["churned"] == 1 and got["skipped_lines"] == 1
    assert got["roc_auc"] == 1.0
    assert got["brier"] == pytest.approx(((1 - risk_a) ** 2 + risk_b**2) / 2)
    assert risk_a >= 0.7 > risk_b
    assert (got["precision"], got["recall"]) == (1.0, 1.0)
