"""A customer's journey and how one event changes it: the entry point of the pure core.

`apply_event(state, event, rules)` mutates one customer's state and returns what the event
caused (alerts, the cases it touched). It is deterministic, does no I/O, and a repeated
event_id changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from schemas import events as ev
from streams import alerting, churn
from streams.alerting import Alert
from streams.cases import OPEN, Case, Contact, SelfServiceAttempt, case_reason, case_status, choose_case
from streams.effort import Effort, channel_path, score
from streams.rules import Rules
from streams.surveys import SurveyAnswer
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
    last_survey: SurveyRecord | None = None  # the latest by occurred_at
    latest_scores: dict[str, tuple[int, int]] = field(default_factory=dict)  # metric → (occurred_at, score)
    churned_at: int | None = None
    churn_alerted: dict[str, int] = field(default_factory=dict)  # severity → occurred_at of the last churn.risk
    last_risk: tuple[int, float] | None = None  # (evaluated at, risk) after the latest event
    # scores of cases not changed since they were computed (not stored; weights are per process)
    efforts: dict[str, Effort] = field(default_factory=dict, compare=False, repr=False)
    # what the insights aggregates hold of each case (kept by the worker between batches, not stored)
    contributions: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def effort_of(self, case: Case, rules: Rules) -> Effort:
        """The case's effort, computed once until one of its events changes it."""
        effort = self.efforts.get(case.case_id)
        if effort is None:
            effort = self.efforts[case.case_id] = score(case, self.contacts, rules)
        return effort

    def latest_contact(self) -> Contact | None:
        started = [c for c in self.contacts.values() if c.started_at is not None]
        return max(started, key=lambda c: (c.started_at, c.contact_id)) if started else None


@dataclass(slots=True)
class SurveyRecord:
    """A customer's survey answer as kept for the next agent and for churn risk."""

    event_id: str
    occurred_at: int
    nps: int | None
    ces: int | None
    csat: int | None
    contact_id: str | None
    case_id: str | None
    segments: list[str]
    comment: str | None = None


COMMENT_KEPT = 1000  # characters of a survey comment kept in state


@dataclass(slots=True)
class Outcome:
    """What applying one event did."""

    duplicate: bool = False
    cases: list[str] = field(default_factory=list)  # cases whose facts changed
    alerts: list[Alert] = field(default_factory=list)
    answer: SurveyAnswer | None = None  # a survey's scores, for the aggregates
    label: tuple[float, int] | None = None  # (risk, churned?) of a customer whose outcome became known


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
    if state.churned_at is None and state.last_risk is not None:
        scored_at, risk = state.last_risk
        if event.type == "customer.churned":
            out.label = (risk, 1)  # the risk just before the customer left
        elif t - scored_at >= rules.churn_label_horizon_us:
            out.label = (risk, 0)  # still here long after that score
    handler = _HANDLERS[event.type]
    handler(state, event, t, rules, out)
    for case_id in out.cases:
        state.efforts.pop(case_id, None)
    for case_id in dict.fromkeys(out.cases):
        _check_effort(state, state.cases[case_id], event, rules, out)
    if state.churned_at is None:
        _check_churn(state, event, rules, out)
    return out


def _check_churn(state: CustomerState, event: ev.Event, rules: Rules, out: Outcome) -> None:
    """churn.risk (§5), evaluated at the customer's latest event time after every event."""
    assert state.last_event_at is not None
    at = state.last_event_at
    risk = churn.risk_of(state, at, rules)
    state.last_risk = (at, risk)
    severity = churn.crossed(risk, at, state.churn_alerted, rules)
    if severity is None:
        return
    assessed = churn.assess(state, at, rules)  # with its reasons, now that they are needed
    state.churn_alerted[severity] = at
    latest = state.latest_contact()
    case = state.cases.get(latest.case_id) if latest and latest.case_id else None
    out.alerts.append(
        Alert(
            alert_id=alerting.alert_id("churn.risk", state.customer_id, severity, event.event_id),
            type="churn.risk",
            severity=severity,
            score=assessed.risk,
            threshold=rules.churn_critical if severity == alerting.CRITICAL else rules.churn_warning,
            occurred_at=to_us(event.occurred_at),
            customer_id=state.customer_id,
            case_id=case.case_id if case else None,
            contact_id=latest.contact_id if latest else None,
            segments=_contact_segments(state, latest, case),
            reasons=assessed.reasons,
            trigger_event_id=event.event_id,
        )
    )


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


def attribute(state: CustomerState, e: ev.SurveyResponded) -> tuple[Contact | None, Case | None, dict[str, str | None]]:
    """A survey's contact, case and segment values (§6): its own field where given, else those of
    the contact it names (or, with only case_id, that case's latest contact) as known now."""
    contact = state.contacts.get(e.contact_id) if e.contact_id else None
    case = state.cases.get(e.case_id) if e.case_id else None
    if case is None and contact is not None and contact.case_id:
        case = state.cases.get(contact.case_id)
    if contact is None and case is not None and case.contacts:
        contact = state.contacts[case.contacts[-1][1]]
    reason = case_reason(case, state.contacts) if case is not None else None
    values = {
        "channel": e.channel or (contact.channel if contact else None),
        "team": e.team_id or (contact.last_team if contact else None),
        "agent": e.agent_id or (contact.last_agent if contact else None),
        "reason": e.reason or reason,
    }
    return contact, case, values


def _survey(state: CustomerState, e: ev.SurveyResponded, t: int, rules: Rules, out: Outcome) -> None:
    contact, case, values = attribute(state, e)
    named = alerting.segments_of(values["channel"], values["team"], values["agent"], values["reason"])
    record = SurveyRecord(
        event_id=e.event_id,
        occurred_at=t,
        nps=e.nps,
        ces=e.ces,
        csat=e.csat,
        contact_id=e.contact_id or (contact.contact_id if contact else None),
        case_id=case.case_id if case else e.case_id,
        segments=list(named),
        comment=e.comment[:COMMENT_KEPT] if e.comment else None,
    )
    if state.last_survey is None or t >= state.last_survey.occurred_at:
        state.last_survey = record
    for metric in ("nps", "ces", "csat"):
        score = getattr(e, metric)
        if score is not None and (metric not in state.latest_scores or t >= state.latest_scores[metric][0]):
            state.latest_scores[metric] = (t, score)
    out.answer = SurveyAnswer(occurred_at=t, segments=("all", *named), nps=e.nps, ces=e.ces, csat=e.csat)
    if e.nps is not None and e.nps <= 6:
        out.alerts.append(_detractor_alert(state, e, record, rules))


def _detractor_alert(state: CustomerState, e: ev.SurveyResponded, record: SurveyRecord, rules: Rules) -> Alert:
    """nps.detractor (§5): every answer 0–6, for a closed-loop follow-up by a person within 48 h."""
    assert e.nps is not None
    reasons: list[dict[str, object]] = [
        {"driver": "nps", "detail": f"answered {e.nps} of 10 (detractor)", "contribution": e.nps}
    ]
    critical = e.nps <= rules.detractor_critical_nps
    worst = _worst_open_case(state, rules)
    if worst is not None and worst[1] >= rules.detractor_critical_effort:
        critical = True
        reasons.append(
            {
                "driver": "open_case_effort",
                "detail": f"open case {worst[0]} with effort {worst[1]:g}: {worst[2]}",
                "contribution": worst[1],
            }
        )
    if record.comment:
        snippet = record.comment if len(record.comment) <= 140 else record.comment[:139] + "…"
        reasons.append({"driver": "comment", "detail": snippet, "contribution": 0})
    t = record.occurred_at
    return Alert(
        alert_id=alerting.alert_id("nps.detractor", state.customer_id, e.event_id),
        type="nps.detractor",
        severity=alerting.CRITICAL if critical else alerting.WARNING,
        score=e.nps,
        threshold=6,  # a detractor answers 0–6
        occurred_at=t,
        customer_id=state.customer_id,
        case_id=record.case_id,
        contact_id=record.contact_id,
        segments=tuple(record.segments),
        reasons=tuple(reasons),
        trigger_event_id=e.event_id,
        due_at=t + rules.detractor_follow_up_us,
    )


def _worst_open_case(state: CustomerState, rules: Rules) -> tuple[str, float, str] | None:
    """The customer's open case with the most effort: (case_id, effort, its channel path)."""
    worst: tuple[str, float, str] | None = None
    for case in state.cases.values():
        if not case.visible() or case_status(case, state.contacts) != OPEN:
            continue
        effort = state.effort_of(case, rules)
        if worst is None or effort.total > worst[1]:
            worst = (case.case_id, effort.total, " → ".join(channel_path(case, state.contacts)))
    return worst


def _churned(state: CustomerState, e: ev.CustomerChurned, t: int, rules: Rules, out: Outcome) -> None:
    if state.churned_at is None or t < state.churned_at:
        state.churned_at = t


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


def _contact_segments(state: CustomerState, contact: Contact | None, case: Case | None) -> tuple[str, ...]:
    """The segments of a customer's alert (§5): channel, team and agent of the contact it
    concerns, and its case's reason."""
    return alerting.segments_of(
        contact.channel if contact else None,
        contact.last_team if contact else None,
        contact.last_agent if contact else None,
        case_reason(case, state.contacts) if case else None,
    )


def _check_effort(state: CustomerState, case: Case, event: ev.Event, rules: Rules, out: Outcome) -> None:
    """effort.high (§5): at most one alert per case per severity."""
    if not case.contacts and not case.self_service:
        return
    effort = state.effort_of(case, rules)
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
    segments = _contact_segments(state, contact, case)
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
