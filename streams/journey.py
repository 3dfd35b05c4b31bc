"""A customer's journey and how one event changes it: the entry point of the pure core.

`apply_event(state, event, rules)` mutates one customer's state and returns what the event
caused (alerts, the cases it touched). It is deterministic, does no I/O, and a repeated
event_id changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from schemas import events as ev
from streams import alerting
from streams.alerting import Alert
from streams.cases import Case, Contact, SelfServiceAttempt, case_reason, choose_case
from streams.effort import score
from streams.rules import Rules
from streams.times import to_us


def event_digest(event_id: str) -> bytes:
    """8 bytes that stand for an event id in the dedupe set (a collision needs ~4e9 events
    of one customer to become likely)."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


@dataclass(slots=True)
class CustomerState:
    """Everything effortpulse keeps about one customer."""

    customer_id: str
    contacts: dict[str, Contact] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    pending_self_service: list[SelfServiceAttempt] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)  # digests of applied event ids
    last_event_at: int | None = None  # latest occurred_at applied
    events: int = 0  # events applied

    def case_of(self, contact_id: str | None) -> Case | None:
        contact = self.contacts.get(contact_id) if contact_id else None
        if contact is None or contact.case_id is None:
            return None
        return self.cases.get(contact.case_id)

    def latest_contact(self) -> Contact | None:
        started = [c for c in self.contacts.values() if c.started_at is not None]
        return max(started, key=lambda c: (c.started_at, c.contact_id)) if started else None

    def is_empty(self) -> bool:
        return not self.seen


@dataclass(slots=True)
class Outcome:
    """What applying one event did."""

    duplicate: bool = False
    cases: list[str] = field(default_factory=list)  # cases whose facts changed
    alerts: list[Alert] = field(default_factory=list)


def apply_event(state: CustomerState, event: ev.Event, rules: Rules) -> Outcome:
    """Apply one valid event to its customer's state; rules are evaluated right after it."""
    digest = event_digest(event.event_id)
    if digest in state.seen:
        return Outcome(duplicate=True)
    state.seen.add(digest)
    state.events += 1
    t = to_us(event.occurred_at)
    if state.last_event_at is None or t > state.last_event_at:
        state.last_event_at = t
    out = Outcome()
    handler = _HANDLERS[event.type]
    handler(state, event, t, rules, out)
    for case_id in out.cases:
        _check_effort(state, state.cases[case_id], event, rules, out)
    return out


def _contact(state: CustomerState, contact_id: str) -> Contact:
    contact = state.contacts.get(contact_id)
    if contact is None:
        contact = state.contacts[contact_id] = Contact(contact_id)
    return contact


def _case(state: CustomerState, case_id: str) -> Case:
    case = state.cases.get(case_id)
    if case is None:
        case = state.cases[case_id] = Case(case_id)
    return case


def _touch(state: CustomerState, contact: Contact, out: Outcome) -> None:
    if contact.case_id is not None:
        out.cases.append(contact.case_id)


def _started(state: CustomerState, e: ev.ContactStarted, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    if contact.started:
        return  # a second start of the same contact is ignored; the first one stands
    contact.channel = e.channel
    contact.started_at = t
    contact.reason = e.reason
    contact.queue_wait_s = e.queue_wait_seconds
    contact.add_agent(t, e.agent_id)
    contact.add_team(t, e.team_id)
    case_id = e.case_id or choose_case(state.cases, state.contacts, t, e.reason, rules.repeat_window_us)
    case = _case(state, case_id or e.contact_id)
    contact.case_id = case.case_id
    case.add_contact(contact)
    # failed self-service attempts waiting for the customer's next contact within the window
    waiting = [a for a in state.pending_self_service if a.at <= t <= a.at + rules.self_service_window_us]
    for attempt in waiting:
        state.pending_self_service.remove(attempt)
        case.self_service.append(attempt)
    out.cases.append(case.case_id)


def _transferred(state: CustomerState, e: ev.ContactTransferred, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    contact.transfers += 1
    # the agent handing over was there just before the one taking over
    contact.add_agent(t - 1, e.from_agent_id)
    contact.add_agent(t, e.to_agent_id)
    contact.add_team(t - 1, e.from_team_id)
    contact.add_team(t, e.to_team_id)
    _touch(state, contact, out)


def _info_repeated(state: CustomerState, e: ev.ContactInfoRepeated, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    contact.infos.append(e.info)
    _touch(state, contact, out)


def _held(state: CustomerState, e: ev.ContactHeld, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    contact.holds.append(e.hold_seconds)
    _touch(state, contact, out)


def _policy_blocked(state: CustomerState, e: ev.ContactPolicyBlocked, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    contact.policies.append(e.policy)
    _touch(state, contact, out)


def _ended(state: CustomerState, e: ev.ContactEnded, t: int, rules: Rules, out: Outcome) -> None:
    contact = _contact(state, e.contact_id)
    # the latest end decides; at the same instant an unresolved end wins, whatever the arrival order
    if contact.ended_at is None or t > contact.ended_at or (t == contact.ended_at and not e.resolved):
        contact.ended_at = t
        contact.resolved = e.resolved
        contact.handle_s = e.handle_seconds
        contact.disposition = e.disposition
    contact.ever_unresolved |= not e.resolved
    contact.scripted |= bool(e.scripted)
    contact.add_agent(t, e.agent_id)
    contact.add_team(t, e.team_id)
    _touch(state, contact, out)


def _self_service(state: CustomerState, e: ev.SelfServiceFailed, t: int, rules: Rules, out: Outcome) -> None:
    attempt = SelfServiceAttempt(at=t, channel=e.channel, reason=e.reason)
    if e.case_id:
        case = _case(state, e.case_id)
    else:
        # the customer's next contact that starts within the window after the attempt
        later = [
            c
            for c in state.contacts.values()
            if c.started_at is not None and t <= c.started_at <= t + rules.self_service_window_us
        ]
        if not later:
            state.pending_self_service.append(attempt)
            return
        nxt = min(later, key=lambda c: (c.started_at, c.contact_id))
        assert nxt.case_id is not None
        case = state.cases[nxt.case_id]
    case.self_service.append(attempt)
    out.cases.append(case.case_id)


def _reopened(state: CustomerState, e: ev.CaseReopened, t: int, rules: Rules, out: Outcome) -> None:
    case = _case(state, e.case_id)
    if case.reopened_at is None or t > case.reopened_at:
        case.reopened_at = t
    out.cases.append(case.case_id)


def _resolved(state: CustomerState, e: ev.CaseResolved, t: int, rules: Rules, out: Outcome) -> None:
    case = _case(state, e.case_id)
    case.resolved_marks.append(t)
    case.proactive |= bool(e.proactive)
    out.cases.append(case.case_id)


def _survey(state: CustomerState, e: ev.SurveyResponded, t: int, rules: Rules, out: Outcome) -> None:
    pass  # surveys come with their own issue


def _churned(state: CustomerState, e: ev.CustomerChurned, t: int, rules: Rules, out: Outcome) -> None:
    pass  # churn comes with its own issue


_HANDLERS = {
    "contact.started": _started,
    "contact.transferred": _transferred,
    "contact.info_repeated": _info_repeated,
    "contact.held": _held,
    "contact.policy_blocked": _policy_blocked,
    "contact.ended": _ended,
    "self_service.failed": _self_service,
    "case.reopened": _reopened,
    "case.resolved": _resolved,
    "survey.responded": _survey,
    "customer.churned": _churned,
}


def _check_effort(state: CustomerState, case: Case, event: ev.Event, rules: Rules, out: Outcome) -> None:
    """effort.high (§5): at most one alert per case per severity."""
    if not case.contacts and not case.self_service:
        return
    effort = score(case, state.contacts, rules)
    total = effort.total
    severity = alerting.crossed(total, rules.effort_warning, rules.effort_critical, case.alerted)
    if severity is None:
        return
    case.alerted += "wc" if severity == alerting.CRITICAL else "w"
    threshold = rules.effort_critical if severity == alerting.CRITICAL else rules.effort_warning
    contact_id = getattr(event, "contact_id", None)
    contact = state.contacts.get(contact_id) if contact_id else None
    if contact is None or contact.case_id != case.case_id:
        contact = state.contacts[case.contacts[-1][1]] if case.contacts else None
    segments = alerting.segments_of(
        contact.channel if contact else None,
        contact.last_team if contact else None,
        contact.last_agent if contact else None,
        case_reason(case, state.contacts),
    )
    out.alerts.append(
        Alert(
            alert_id=alerting.alert_id("effort.high", state.customer_id, case.case_id, severity),
            type="effort.high",
            severity=severity,
            score=total,
            threshold=threshold,
            occurred_at=to_us(event.occurred_at),
            customer_id=state.customer_id,
            case_id=case.case_id,
            contact_id=contact.contact_id if contact else None,
            segments=segments,
            reasons=tuple(effort.reasons()),
            trigger_event_id=event.event_id,
        )
    )
