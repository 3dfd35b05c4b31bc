"""A customer's state as compact bytes (msgpack of positional rows) and back.

Rows are positional to keep Redis memory per customer small; the first element of the blob
is the format version so a later format can read an older one.
"""

from __future__ import annotations

from typing import Any

import msgpack

from streams.cases import Case, Contact, SelfServiceAttempt
from streams.journey import CustomerState, SurveyRecord

FORMAT = 1


def _contact_row(c: Contact) -> list[Any]:
    return [
        c.contact_id, c.case_id, c.channel, c.started_at, c.reason, c.queue_wait_s, c.ended_at,
        c.resolved, c.ever_unresolved, c.scripted, c.handle_s, c.disposition, c.transfers,
        c.infos, c.holds, c.policies, [x for a in c.agents for x in a], [x for a in c.teams for x in a],
    ]  # fmt: skip


def _pairs(flat: list[Any]) -> list[tuple[int, str]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _contact(r: list[Any]) -> Contact:
    return Contact(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
        r[13], r[14], r[15], _pairs(r[16]), _pairs(r[17]),
    )  # fmt: skip


def _attempt_row(a: SelfServiceAttempt) -> list[Any]:
    return [a.at, a.channel, a.reason]


def _case_row(c: Case) -> list[Any]:
    return [
        c.case_id, [x for p in c.contacts for x in p], [_attempt_row(a) for a in c.self_service],
        c.resolved_marks, c.proactive, c.reopened_at, c.alerted,
    ]  # fmt: skip


def _case(r: list[Any]) -> Case:
    return Case(r[0], _pairs(r[1]), [SelfServiceAttempt(*a) for a in r[2]], r[3], r[4], r[5], r[6])


def _survey_row(s: SurveyRecord | None) -> list[Any] | None:
    if s is None:
        return None
    return [s.event_id, s.occurred_at, s.nps, s.ces, s.csat, s.contact_id, s.case_id, s.segments, s.comment]


def encode(state: CustomerState) -> bytes:
    """Bytes for Redis; `decode(encode(s))` equals `s`."""
    return msgpack.packb(
        [
            FORMAT,
            state.customer_id,
            [_contact_row(c) for c in state.contacts.values()],
            [_case_row(c) for c in state.cases.values()],
            [_attempt_row(a) for a in state.pending_self_service],
            b"".join(sorted(state.seen)),
            state.last_event_at,
            state.events,
            _survey_row(state.last_survey),
            [[m, t, v] for m, (t, v) in state.latest_scores.items()],
            state.churned_at,
            [[k, v] for k, v in state.churn_alerted.items()],
            list(state.last_risk) if state.last_risk is not None else None,
        ],
        use_bin_type=True,
    )


def decode(blob: bytes) -> CustomerState:
    r = msgpack.unpackb(blob, raw=False, use_list=True)
    if r[0] != FORMAT:
        raise ValueError(f"unknown state format {r[0]!r}")
    seen_raw: bytes = r[5]
    contacts = [_contact(x) for x in r[2]]
    cases = [_case(x) for x in r[3]]
    return CustomerState(
        customer_id=r[1],
        contacts={c.contact_id: c for c in contacts},
        cases={c.case_id: c for c in cases},
        pending_self_service=[SelfServiceAttempt(*a) for a in r[4]],
        seen={seen_raw[i : i + 8] for i in range(0, len(seen_raw), 8)},
        last_event_at=r[6],
        events=r[7],
        last_survey=SurveyRecord(*r[8]) if r[8] is not None else None,
        latest_scores={m: (t, v) for m, t, v in r[9]},
        churned_at=r[10],
        churn_alerted={k: v for k, v in r[11]},
        last_risk=(r[12][0], r[12][1]) if r[12] is not None else None,
    )
