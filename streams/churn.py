"""Churn risk (contract §5 churn.risk): a transparent logistic model over the journey.

    risk = 1 / (1 + e^−(intercept + Σ coefficient_i · feature_i))

Each feature is a named fact of the customer's journey scaled to about 0..1; each reason's
`contribution` is its coefficient × feature on the log-odds scale, so the reasons add up
(with the intercept) to the score. Every coefficient is a setting (EFFORTPULSE_CHURN_COEF_*).

What the research behind it says, and how the model follows it:
- effort drives disloyalty: the open case's effort and recent cases' effort weigh most;
- the service recovery paradox holds only for a first failure: a second failed case after a
  recovered one adds risk of its own;
- detractors are at risk; passives are passively loyal (at risk from an easier option);
  promoters are actively loyal and lower the risk;
- satisfaction is not loyalty: a good CSAT (or an easy CES) never lowers the risk, only a poor
  one raises it; spend is not an input at all;
- a customer who had to contact service recently is more at risk than one who did not.
Pure: state and an evaluation time in, risk and reasons out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.cases import OPEN, case_status
from streams.effort import channel_path
from streams.rules import Rules
from streams.times import DAY

if TYPE_CHECKING:
    from streams.journey import CustomerState

FEATURES: tuple[str, ...] = (
    "open_case_effort",
    "recent_case_effort",
    "unresolved_cases",
    "second_failure",
    "detractor",
    "passive",
    "promoter",
    "hard_effort_answer",
    "poor_csat",
    "recent_contact",
)


@dataclass(frozen=True, slots=True)
class Risk:
    """A churn risk between 0 and 1 and its reasons, largest contribution first."""

    risk: float
    reasons: tuple[dict[str, object], ...]

    def as_dict(self) -> dict[str, object]:
        return {"risk": self.risk, "reasons": list(self.reasons)}


def coefficient(rules: Rules, feature: str) -> float:
    return float(getattr(rules, _COEF[feature]))


_COEF = {f: "churn_coef_" + f for f in FEATURES}


def risk_of(state: CustomerState, at: int, rules: Rules) -> float:
    """The churn risk alone, without writing its reasons (the hot path: after every event)."""
    values, _ = _features(state, at, rules, explain=False)
    logit = rules.churn_intercept
    for name in FEATURES:
        value = values[name]
        if value:
            logit += coefficient(rules, name) * value
    return _sigmoid(logit)


def assess(state: CustomerState, at: int, rules: Rules) -> Risk:
    """The churn risk of a customer (streams.journey.CustomerState) evaluated at time `at`."""
    values, details = _features(state, at, rules, explain=True)
    logit = rules.churn_intercept
    reasons = []
    for name in FEATURES:
        value = values[name]
        if value == 0:
            continue
        contribution = coefficient(rules, name) * value
        logit += contribution
        if contribution != 0:
            reasons.append({"driver": name, "detail": details[name], "contribution": contribution})
    reasons.sort(key=lambda r: (-abs(float(r["contribution"])), FEATURES.index(str(r["driver"]))))  # type: ignore[arg-type]
    return Risk(_sigmoid(logit), tuple(reasons))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    z = math.exp(x)
    return z / (1 + z)


def _features(state: CustomerState, at: int, rules: Rules, explain: bool) -> tuple[dict[str, float], dict[str, str]]:
    values = dict.fromkeys(FEATURES, 0.0)
    details = dict.fromkeys(FEATURES, "")
    lookback = rules.churn_lookback_us
    open_cases = []
    recent_closed = []
    failures: list[tuple[int, str, bool]] = []  # (first_at, case_id, resolved)
    last_contact = None
    for case in state.cases.values():
        if not case.visible():
            continue
        first = case.first_at or 0
        if case.contacts:
            last_contact = max(last_contact or 0, case.contacts[-1][0])
        effort = state.effort_of(case, rules).total
        status = case_status(case, state.contacts)
        if status == OPEN:
            open_cases.append((effort, case))
        elif at - first <= lookback:
            recent_closed.append((effort, case))
        if at - first <= lookback and (effort >= rules.churn_failure_effort or case.reopened_at is not None):
            failures.append((first, case.case_id, status != OPEN))
    if open_cases:
        effort, case = max(open_cases, key=lambda x: (x[0], x[1].case_id))
        values["open_case_effort"] = effort / 100
        if explain:
            details["open_case_effort"] = (
                f"open case {case.case_id} with effort {effort:g} ({' → '.join(channel_path(case, state.contacts))})"
            )
        values["unresolved_cases"] = float(min(len(open_cases), 3))
        if explain:
            details["unresolved_cases"] = f"{len(open_cases)} open case{'s' if len(open_cases) != 1 else ''}"
    if recent_closed:
        effort, case = max(recent_closed, key=lambda x: (x[0], x[1].case_id))
        values["recent_case_effort"] = effort / 100
        if explain:
            details["recent_case_effort"] = (
                f"case {case.case_id} took effort {effort:g} in the last {rules.churn_lookback_us / DAY:g} days"
            )
    failures.sort()
    if len(failures) >= 2 and any(resolved for _, _, resolved in failures[:-1]):
        values["second_failure"] = 1.0
        if explain:
            details["second_failure"] = (
                f"failed again in case {failures[-1][1]} after case {failures[0][1]} was recovered"
            )
    nps = state.latest_scores.get("nps")
    if nps is not None:
        score_ = nps[1]
        kind = "detractor" if score_ <= 6 else "passive" if score_ <= 8 else "promoter"
        values[kind] = 1.0
        details[kind] = (
            ""
            if not explain
            else {
                "detractor": f"latest NPS answer {score_} (detractor)",
                "passive": f"latest NPS answer {score_} (passive: loyal out of inertia, leaves for an easier option)",
                "promoter": f"latest NPS answer {score_} (promoter)",
            }[kind]
        )
    ces = state.latest_scores.get("ces")
    if ces is not None and ces[1] <= 3:
        values["hard_effort_answer"] = (4 - ces[1]) / 3
        if explain:
            details["hard_effort_answer"] = f"CES answer {ces[1]} of 7: it was hard to get the issue handled"
    csat = state.latest_scores.get("csat")
    if csat is not None and csat[1] <= 2:
        values["poor_csat"] = (3 - csat[1]) / 2
        if explain:
            details["poor_csat"] = f"CSAT answer {csat[1]} of 5"
    if last_contact is not None and at >= last_contact:
        days = (at - last_contact) / DAY
        values["recent_contact"] = math.exp(-days / (rules.churn_recency_us / DAY))
        if explain:
            details["recent_contact"] = f"last contact {days:.0f} days ago" if days >= 1 else "contacted service today"
    return values, details


def crossed(risk: float, at: int, alerted: dict[str, int], rules: Rules) -> str | None:
    """The severity a churn.risk alert fires with now, if any: critical at 0.85, warning at 0.7,
    at most one per severity per interval (7 days of event time); a critical one covers warning."""

    def quiet(severity: str) -> bool:
        last = alerted.get(severity)
        return last is None or at - last >= rules.churn_alert_interval_us

    if risk >= rules.churn_critical:
        return "critical" if quiet("critical") else None
    if risk >= rules.churn_warning and quiet("warning") and quiet("critical"):
        return "warning"
    return None


# ------------------------------------------------------------------------------ quality


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties count half); None without both classes."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    ranked = sorted(zip(scores, labels, strict=True), key=lambda x: x[0])
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        mid = (i + j) / 2 + 1  # average 1-based rank of the tie group
        rank_sum += mid * sum(1 for k in range(i, j + 1) if ranked[k][1])
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def brier(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    if not scores:
        return None
    return sum((s - y) ** 2 for s, y in zip(scores, labels, strict=True)) / len(scores)


def precision_recall(
    scores: Sequence[float], labels: Sequence[int], threshold: float
) -> tuple[float | None, float | None]:
    flagged = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
    positives = sum(labels)
    precision = sum(flagged) / len(flagged) if flagged else None
    recall = sum(flagged) / positives if positives else None
    return precision, recall
