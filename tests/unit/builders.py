"""Small builders for unit tests: events at a base time plus an offset in seconds, and a way
to run them through the pure core.

    started("c1", "chat", t=20 * HOURS, reason="billing")
    state, alerts = apply_all([...])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import Event, event_adapter
from streams.alerting import Alert
from streams.effort import Effort, score
from streams.journey import CustomerState, apply_event
from streams.rules import Rules

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER = "cust-1"
RULES = Rules()
MINUTES = 60
HOURS = 3600
DAYS = 86400

_ids = itertools.count(1)


def at(t: float) -> str:
    """RFC 3339 of BASE + t seconds."""
    return (BASE + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")


def event(type_: str, t: float = 0, *, event_id: str | None = None, **fields: Any) -> Event:
    """A validated event of `type_` at BASE + t seconds; None-valued fields are left out."""
    raw = {
        "event_id": event_id or f"ev-{next(_ids)}",
        "type": type_,
        "occurred_at": at(t),
        "customer_id": CUSTOMER,
        **{k: v for k, v in fields.items() if v is not None},
    }
    return event_adapter.validate_python(raw)


def started(contact_id: str, channel: str = "phone", t: float = 0, **fields: Any) -> Event:
    return event("contact.started", t, contact_id=contact_id, channel=channel, **fields)


def transferred(contact_id: str, t: float = 0, **fields: Any) -> Event:
    return event("contact.transferred", t, contact_id=contact_id, **fields)


def info_repeated(contact_id: str, t: float = 0, **fields: Any) -> Event:
    return event("contact.info_repeated", t, contact_id=contact_id, **fields)


def held(contact_id: str, hold_seconds: float, t: float = 0, **fields: Any) -> Event:
    return event("contact.held", t, contact_id=contact_id, hold_seconds=hold_seconds, **fields)


def policy_blocked(contact_id: str, t: float = 0, **fields: Any) -> Event:
    return event("contact.policy_blocked", t, contact_id=contact_id, **fields)


def ended(contact_id: str, resolved: bool, t: float = 0, **fields: Any) -> Event:
    return event("contact.ended", t, contact_id=contact_id, resolved=resolved, **fields)


def self_service_failed(t: float = 0, **fields: Any) -> Event:
    return event("self_service.failed", t, **fields)


def case_resolved(case_id: str, t: float = 0, **fields: Any) -> Event:
    return event("case.resolved", t, case_id=case_id, **fields)


def case_reopened(case_id: str, t: float = 0, **fields: Any) -> Event:
    return event("case.reopened", t, case_id=case_id, **fields)


def apply_all(
    events: Iterable[Event], rules: Rules = RULES, state: CustomerState | None = None
) -> tuple[CustomerState, list[Alert]]:
    """Apply `events` in the given (arrival) order; the final state and every alert emitted."""
    state = state if state is not None else CustomerState(CUSTOMER)
    alerts: list[Alert] = []
    for e in events:
        alerts += apply_event(state, e, rules).alerts
    return state, alerts


def effort_of(state: CustomerState, case_id: str, rules: Rules = RULES) -> Effort:
    return score(state.cases[case_id], state.contacts, rules)


def case_of(state: CustomerState, contact_id: str) -> str:
    """The case_id a started contact belongs to."""
    case_id = state.contacts[contact_id].case_id
    assert case_id is not None, f"{contact_id} has not started"
    return case_id


def nonzero(effort: Effort) -> dict[str, float]:
    """The drivers with points, for exact comparison."""
    return {d: p for d, p in effort.drivers.items() if p}
