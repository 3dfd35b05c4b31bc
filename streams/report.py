"""What the API and the CLI show of a customer: the whole story, so they never repeat it.

Pure: state in, JSON-ready dicts out.
"""

from __future__ import annotations

from typing import Any

from streams import churn
from streams.cases import Case, Contact, case_reason, case_status
from streams.effort import channel_path, score
from streams.journey import CustomerState
from streams.rules import Rules
from streams.surveys import category
from streams.times import iso


def customer_view(state: CustomerState, rules: Rules) -> dict[str, Any]:
    """GET /customers/{id}: cases and their contacts in time order, effort with reasons."""
    cases = sorted((c for c in state.cases.values() if c.visible()), key=lambda c: (c.first_at or 0, c.case_id))
    waiting = sorted(
        (c for c in state.contacts.values() if not c.started),
        key=lambda c: c.contact_id,
    )
    return {
        "customer_id": state.customer_id,
        "cases": [case_view(state, case, rules) for case in cases],
        "churn": _churn_view(state, rules),
        "last_survey": _survey_view(state),
        "open_cases": sum(1 for c in cases if case_status(c, state.contacts) == "open"),
        "last_event_at": iso(state.last_event_at) if state.last_event_at is not None else None,
        "events": state.events,
        "waiting_contacts": [
            {
                "contact_id": c.contact_id,
                "note": "events received before its contact.started; they count once it arrives",
            }
            for c in waiting
        ],
        "pending_self_service": [
            {"at": iso(a.at), "channel": a.channel, "reason": a.reason} for a in state.pending_self_service
        ],
    }


def _churn_view(state: CustomerState, rules: Rules) -> dict[str, Any]:
    """The churn risk at the customer's latest event, with its reasons; after a churn label,
    the risk as it stood just before it."""
    at = state.last_event_at if state.last_event_at is not None else 0
    if state.churned_at is not None and state.last_risk is not None:
        view: dict[str, Any] = {"risk": state.last_risk[1], "reasons": []}
    else:
        view = churn.assess(state, at, rules).as_dict()
    view["churned_at"] = iso(state.churned_at) if state.churned_at is not None else None
    view["evaluated_at"] = iso(at) if state.last_event_at is not None else None
    return view


def _survey_view(state: CustomerState) -> dict[str, Any] | None:
    s = state.last_survey
    if s is None:
        return None
    return {
        "event_id": s.event_id,
        "occurred_at": iso(s.occurred_at),
        "nps": s.nps,
        "nps_category": category(s.nps) if s.nps is not None else None,
        "ces": s.ces,
        "csat": s.csat,
        "contact_id": s.contact_id,
        "case_id": s.case_id,
        "segments": s.segments,
        "comment": s.comment,
    }


def case_view(state: CustomerState, case: Case, rules: Rules) -> dict[str, Any]:
    effort = score(case, state.contacts, rules)
    contacts = [state.contacts[cid] for _, cid in case.contacts]
    status = case_status(case, state.contacts)
    reason = case_reason(case, state.contacts)
    return {
        "case_id": case.case_id,
        "status": status,
        "reason": reason,
        "effort": effort.total,
        "drivers": effort.drivers,
        "reasons": effort.reasons(),
        "summary": _summary(case, contacts, status, reason, channel_path(case, state.contacts)),
        "opened_at": iso(case.first_at) if case.first_at is not None else None,
        "contacts": [contact_view(c) for c in contacts],
        "self_service_failures": [
            {"at": iso(a.at), "channel": a.channel, "reason": a.reason}
            for a in sorted(case.self_service, key=lambda a: a.at)
        ],
    }


def contact_view(c: Contact) -> dict[str, Any]:
    return {
        "contact_id": c.contact_id,
        "channel": c.channel,
        "started_at": iso(c.started_at) if c.started_at is not None else None,
        "ended_at": iso(c.ended_at) if c.ended_at is not None else None,
        "resolved": c.resolved,
        "agents": c.agent_path(),
        "teams": c.team_path(),
        "reason": c.reason,
        "transfers": c.transfers,
        "repeated_info": [i for i in c.infos if i] + [None] * sum(1 for i in c.infos if not i),
        "holds_seconds": c.holds,
        "policy_blocks": c.policies,
        "queue_wait_seconds": c.queue_wait_s,
        "scripted": c.scripted,
        "disposition": c.disposition,
    }


def _summary(case: Case, contacts: list[Contact], status: str, reason: str | None, path: list[str]) -> str:
    """One line for the next agent: how many contacts, about what, through which channels, where it stands."""
    n = len(contacts)
    parts = [f"{n} contact{'s' if n != 1 else ''}" + (f" about {reason}" if reason else "")]
    if len(path) > 1:
        parts.append(" → ".join(path))
    infos = [i for c in contacts for i in c.infos if i]
    if infos:
        parts.append("already gave: " + ", ".join(dict.fromkeys(infos)))
    parts.append(status)
    return "; ".join(parts)


def open_case_row(state: CustomerState, case_id: str, rules: Rules) -> dict[str, Any]:
    """One line of the open-cases queue: who, which case, how much effort and why."""
    view = case_view(state, state.cases[case_id], rules)
    last = view["contacts"][-1] if view["contacts"] else None
    return {
        "customer_id": state.customer_id,
        "case_id": case_id,
        "status": view["status"],
        "reason": view["reason"],
        "effort": view["effort"],
        "reasons": view["reasons"],
        "summary": view["summary"],
        "last_contact_at": last["started_at"] if last else None,
        "teams": list(dict.fromkeys(t for c in view["contacts"] for t in c["teams"])),
    }
