"""Contacts and cases (contract §3): what the next agent needs to see, as plain values.

All times are int microseconds since the epoch (event time). Nothing here does I/O.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

OPEN = "open"
RESOLVED = "resolved"


@dataclass(slots=True)
class Contact:
    """One contact: a call, chat, mail... Its events may arrive before its `contact.started`;
    they are kept here and count toward a case only once the start is known."""

    contact_id: str
    case_id: str | None = None  # set when contact.started is processed
    channel: str | None = None
    started_at: int | None = None
    reason: str | None = None
    queue_wait_s: float | None = None
    ended_at: int | None = None  # of the latest contact.ended (by occurred_at)
    resolved: bool | None = None  # of that latest contact.ended
    ever_unresolved: bool = False  # any contact.ended said resolved=false
    scripted: bool = False
    handle_s: float | None = None
    disposition: str | None = None
    transfers: int = 0
    infos: list[str | None] = field(default_factory=list)  # one entry per info_repeated
    holds: list[float] = field(default_factory=list)  # hold_seconds of each hold
    policies: list[str | None] = field(default_factory=list)  # one entry per policy_blocked
    agents: list[tuple[int, str]] = field(default_factory=list)  # (time, agent), time order
    teams: list[tuple[int, str]] = field(default_factory=list)

    @property
    def started(self) -> bool:
        return self.started_at is not None

    def add_agent(self, t: int, agent: str | None) -> None:
        if agent:
            bisect.insort(self.agents, (t, agent))

    def add_team(self, t: int, team: str | None) -> None:
        if team:
            bisect.insort(self.teams, (t, team))

    def agent_path(self) -> list[str]:
        """Agents in time order, a repeat of the same agent in a row shown once."""
        return _path(self.agents)

    def team_path(self) -> list[str]:
        return _path(self.teams)

    @property
    def last_agent(self) -> str | None:
        return self.agents[-1][1] if self.agents else None

    @property
    def last_team(self) -> str | None:
        return self.teams[-1][1] if self.teams else None


def _path(entries: list[tuple[int, str]]) -> list[str]:
    out: list[str] = []
    for _, name in entries:
        if not out or out[-1] != name:
            out.append(name)
    return out


@dataclass(slots=True)
class SelfServiceAttempt:
    """A failed self-service attempt (web, app, chatbot, ivr): not a contact, but effort."""

    at: int
    channel: str | None
    reason: str | None


@dataclass(slots=True)
class Case:
    """One issue of a customer, across contacts. Status and effort are derived, not stored."""

    case_id: str
    contacts: list[tuple[int, str]] = field(default_factory=list)  # (started_at, contact_id), sorted
    self_service: list[SelfServiceAttempt] = field(default_factory=list)
    resolved_marks: list[int] = field(default_factory=list)  # case.resolved times
    proactive: bool = False  # a case.resolved said proactive=true
    reopened_at: int | None = None  # latest case.reopened
    alerted: str = ""  # effort.high severities already alerted: "w", "c"

    def add_contact(self, contact: Contact) -> None:
        assert contact.started_at is not None
        bisect.insort(self.contacts, (contact.started_at, contact.contact_id))

    @property
    def first_at(self) -> int | None:
        """When the case began: its first contact (or failed self-service attempt)."""
        times = [t for t, _ in self.contacts[:1]] + [a.at for a in self.self_service]
        return min(times) if times else None

    def visible(self) -> bool:
        return bool(self.contacts or self.self_service)


def case_reason(case: Case, contacts: dict[str, Contact]) -> str | None:
    """The case's reason: that of its first contact (by occurred_at) that has one."""
    for _, cid in case.contacts:
        reason = contacts[cid].reason
        if reason:
            return reason
    return None


def case_status(case: Case, contacts: dict[str, Contact]) -> str:
    """Open or resolved (§3): the latest of these decides — its latest contact starting (open),
    that contact ending (resolved when resolved=true), case.resolved, case.reopened."""
    marks: list[tuple[int, int, str]] = []  # (time, tie-break rank, status)
    if case.contacts:
        latest = contacts[case.contacts[-1][1]]
        assert latest.started_at is not None
        marks.append((latest.started_at, 0, OPEN))
        if latest.ended_at is not None:
            marks.append((latest.ended_at, 1, RESOLVED if latest.resolved else OPEN))
    if case.reopened_at is not None:
        marks.append((case.reopened_at, 2, OPEN))
    if case.resolved_marks:
        marks.append((max(case.resolved_marks), 3, RESOLVED))
    if not marks:
        return OPEN
    return max(marks)[2]


def choose_case(
    cases: dict[str, Case],
    contacts: dict[str, Contact],
    started_at: int,
    reason: str | None,
    repeat_window_us: int,
) -> str | None:
    """The case a contact.started without case_id joins (§3), or None for a new case.

    The customer's most recent case whose latest contact started within the repeat window
    before this one and whose reason matches (a missing reason on either side matches).
    Contacts that start after this one are not looked at, so a late-arriving start joins the
    case it would have joined in order.
    """
    best: tuple[int, str] | None = None
    for case in cases.values():
        prior = bisect.bisect_right(case.contacts, (started_at, "\U0010ffff"))
        if not prior:
            continue
        latest_before = case.contacts[prior - 1][0]
        if started_at - latest_before > repeat_window_us:
            continue
        theirs = case_reason(case, contacts)
        if reason and theirs and reason != theirs:
            continue
        if best is None or (latest_before, case.case_id) > best:
            best = (latest_before, case.case_id)
    return best[1] if best else None
