"""`effortpulse evaluate FILE`: replay a labelled event file through the same rules, in memory,
and measure the churn risk against what customers did. Pure: lines in, figures out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from schemas.events import parse_event
from streams import churn
from streams.journey import CustomerState, apply_event
from streams.rules import Rules
from streams.times import to_us


def evaluate(lines: Iterable[str], rules: Rules) -> dict[str, Any]:
    """Replay JSON lines in file order. A churner's risk is the one that stood just before its
    first customer.churned event; everyone else's is taken at the end of the file (its latest
    occurred_at). Returns the figures `effortpulse evaluate` prints."""
    states: dict[str, CustomerState] = {}
    at_churn: dict[str, float] = {}
    skipped = events = 0
    end = None
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except ValidationError:
            skipped += 1
            continue
        events += 1
        t = to_us(event.occurred_at)
        end = t if end is None else max(end, t)
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        if event.type == "customer.churned" and state.churned_at is None and event.customer_id not in at_churn:
            before = state.last_risk[1] if state.last_risk else churn.assess(state, t, rules).risk
            at_churn[event.customer_id] = before
        apply_event(state, event, rules)
    scores, labels = [], []
    for cid, state in states.items():
        if cid in at_churn:
            scores.append(at_churn[cid])
            labels.append(1)
        else:
            scores.append(churn.assess(state, end or 0, rules).risk)
            labels.append(0)
    precision, recall = churn.precision_recall(scores, labels, rules.churn_warning)
    return {
        "customers": len(states),
        "churned": sum(labels),
        "roc_auc": churn.roc_auc(scores, labels),
        "brier": churn.brier(scores, labels),
        "precision": precision,
        "recall": recall,
        "threshold": rules.churn_warning,
        "events": events,
        "skipped_lines": skipped,
    }
