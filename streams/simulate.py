"""A simulated contact centre (contract §8 `effortpulse simulate`): customers, their journeys,
the surveys they answer and whether they leave, as contract §3 events.

Pure: no I/O, no clock. `generate(customers, seed, start_us=... | end_us=...)` returns the
whole stream as plain dicts in delivery order; `streams.feed` sends it to Kafka at a steady
rate or writes it to a JSON-lines file. The same arguments give the same events, byte for
byte. What happens in customer i's journeys depends only on the seed and i; when it happens
also on the size of the stream. The whole stream is built in memory (~9 events a customer).

The centre
    Eight contact channels weighted like a retailer's mix (phone 34 %, chat 24 %, email 18 %,
    messaging 9 %, social 5 %, web_form 5 %, store 3 %, video 2 %); five teams (billing, tech,
    delivery, returns, loyalty) of 6–10 agents each ("agent-billing-3"); six contact reasons,
    each routed to a likely team (refund and invoice → billing, technical → tech, ...), with
    some misrouting. Agents differ in skill, and harder journeys land more often with weaker
    agents, so agent and team segments differ as well.

Journeys
    Every customer ("cust-000123") has 1–5 journeys (fewer when they churn first); one
    journey is one issue, one case. Its effort profile is drawn first (low 55 %, medium 25 %,
    high 20 %) and its drivers are then picked to fit, counting points with the contract's
    §4 default weights:
    - low: kind "easy" — one friendly contact, resolved; at most a short hold, now and then a
      long queue wait or a scripted answer (< 30 points);
    - medium (30–55 points) and high (≥ 60 points): a kind, the way it goes wrong — `repeat`
      (2–4 contacts over hours and days), `channel_switch` (chat → email → phone ...),
      `transfer` (between agents and teams, the customer giving the order number again),
      `policy` (refund window, id verification ...), `self_service` (failed web, app,
      chatbot or IVR attempts minutes to hours before the contact) or `hassle` (long queues
      and holds, scripted service) — topped up with other drivers (another contact, a
      transfer, repeated information, a policy block, a long hold, an unresolved end, a
      case.reopened) until the journey has its profile's points.
    A journey whose last contact stays unresolved is sometimes closed by a case.resolved,
    half of them proactive. Contacts carry reason, agent and team; live channels queue
    (queue_wait_seconds) and hold, and short holds and waits that earn no points are
    scattered about as in real data.

Case ids
    About 85 % of contact.started events carry the journey's case_id ("case-000123-2"). The
    rest leave it out, and then every contact of that journey does, so the worker's case
    inference (contract §3: same reason within the 7-day repeat window) puts them into the
    case named after the journey's first contact; a journey leaves case_id out only where that
    inference cannot join it to another of the customer's cases. Failed self-service attempts
    mostly come without case_id and attach to the next contact within 24 h, which is always
    theirs (otherwise they carry the case_id).

Surveys and churn (CEB: effort drives disloyalty)
    40 % of journeys get a survey.responded 30 min to 2 days after they end, naming the last
    contact (and in a third of cases the case); 4 % name no contact but carry their own
    channel, team_id and reason. The answer follows the journey's effort: after a low-effort
    journey ~7 % detractors, ~55 % promoters, CES 5–7, CSAT 4–5; after a high-effort one
    ~75 % detractors, CES mostly 1–3, CSAT 1–3; an unresolved end makes it worse, a proactive fix
    of a medium journey better (the service recovery paradox). A third carry only nps, half
    all three scores, some nps and csat, a few only ces and csat; one in ten has a comment.
    After each journey the customer may churn: ~4 % after a low-effort journey, ~45 % after a
    high-effort one (more after a detractor answer, less after a promoter one). The
    customer.churned event comes 1–14 days after the customer's last journey ends, and a
    churned customer has no further journeys.

Time
    The stream is packed at one event per `seconds_per_event` simulated seconds on average
    (the CLI passes speedup / rate): each customer's journeys start at uniformly random
    times in a span of events × seconds_per_event (so a customer may have two issues open at
    once, each its own case); their later contacts, surveys and churn run on past it by
    days. Sent at `rate` events per second, event time then advances about `speedup`
    simulated seconds per wall second, faster at the end, where only the journeys' tails
    remain. The defaults (18 s an event) make a busy centre: 1000 customers' journeys start
    within two days. Times are whole seconds, RFC 3339 with Z.

Delivery order
    Events are delivered in occurred_at order (ties by customer, then the journey's own
    order), except that about 2 % of a contact's own events (held, transferred, ended, ...)
    are delivered just before the event of that contact that precedes them — e.g. an ended
    before its started — as they would be by a real, partly unordered feed. Event ids are
    f"sim-{seed}-{n}", n the position in the stream: rerunning the same simulation into the
    same topic replays the same events, which the worker recognises as duplicates.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.rules import DRIVERS, EFFORT_CAP, Rules
from streams.times import US, iso

# --- the centre -------------------------------------------------------------------------------

CONTACT_CHANNELS: dict[str, float] = {
    "phone": 34,
    "chat": 24,
    "email": 18,
    "messaging": 9,
    "social": 5,
    "web_form": 5,
    "store": 3,
    "video": 2,
}
# channels with a live agent: a customer can be put on hold
LIVE = ("phone", "chat", "video", "messaging", "store")
# channels with a queue in front, and a normal wait (seconds, earns no points)
QUEUE_WAIT: dict[str, tuple[int, int]] = {"phone": (10, 110), "chat": (5, 90), "video": (10, 100), "messaging": (5, 60)}
# how long a contact lasts from start to end (seconds); asynchronous channels take hours
DURATION: dict[str, tuple[int, int]] = {
    "phone": (240, 1500),
    "chat": (300, 1800),
    "video": (300, 1500),
    "store": (300, 1800),
    "messaging": (900, 4 * 3600),
    "social": (1800, 6 * 3600),
    "email": (3600, 24 * 3600),
    "web_form": (3600, 24 * 3600),
}
TEAMS: dict[str, int] = {"billing": 9, "tech": 10, "delivery": 8, "returns": 7, "loyalty": 6}
# reason → (the team it is routed to, weight)
REASONS: dict[str, tuple[str, float]] = {
    "delivery": ("delivery", 24),
    "technical": ("tech", 18),
    "refund": ("billing", 16),
    "return": ("returns", 15),
    "invoice": ("billing", 14),
    "account": ("loyalty", 13),
}
POLICIES: dict[str, tuple[str, ...]] = {
    "delivery": ("address change after dispatch", "carrier claim process", "id verification"),
    "technical": ("warranty terms", "id verification", "repair before replacement"),
    "refund": ("refund window", "receipt required", "refund to original payment only"),
    "return": ("return window", "original packaging", "restocking fee"),
    "invoice": ("billing cycle", "id verification", "account holder only"),
    "account": ("id verification", "account holder only", "notice period"),
}
INFOS = ("order number", "address", "account id", "email address", "phone number", "invoice number", "date of birth")
RESOLVED_DISPOSITIONS: dict[str, tuple[str, ...]] = {
    "delivery": ("redelivery booked", "parcel located", "information given"),
    "technical": ("fixed", "replacement sent", "information given"),
    "refund": ("refund issued", "information given"),
    "return": ("return label sent", "refund issued"),
    "invoice": ("invoice corrected", "information given"),
    "account": ("account updated", "information given"),
}
UNRESOLVED_DISPOSITIONS = (
    "escalated",
    "callback promised",
    "pending back office",
    "waiting for customer",
    "no solution",
)
# a failed self-service attempt and the channels the customer tries next
SELF_SERVICE_NEXT: dict[str, dict[str, float]] = {
    "ivr": {"phone": 1},
    "chatbot": {"chat": 3, "phone": 1},
    "app": {"phone": 2, "chat": 2, "messaging": 1},
    "web": {"phone": 2, "chat": 2, "email": 2, "web_form": 1},
}
SELF_SERVICE_CHANNELS: dict[str, float] = {"web": 35, "app": 25, "chatbot": 20, "ivr": 20}
# the order customers escalate through channels
LADDERS: tuple[tuple[str, ...], ...] = (
    ("chat", "email", "phone", "store"),
    ("web_form", "email", "phone", "chat"),
    ("social", "messaging", "phone", "email"),
    ("email", "phone", "chat", "store"),
    ("messaging", "email", "phone", "video"),
    ("chat", "phone", "email", "store"),
)

# --- journeys ---------------------------------------------------------------------------------

PROFILES: dict[str, float] = {"low": 55, "medium": 25, "high": 20}
# effort points a profile's journeys have (contract §4 default weights, capped at 100)
BANDS: dict[str, tuple[float, float]] = {"low": (0, 25), "medium": (30, 55), "high": (60, EFFORT_CAP)}
WRONG_KINDS: dict[str, float] = {
    "repeat": 22,
    "channel_switch": 20,
    "transfer": 18,
    "policy": 14,
    "self_service": 14,
    "hassle": 12,
}
KINDS: tuple[str, ...] = ("easy", *WRONG_KINDS)
JOURNEYS_PER_CUSTOMER: dict[int, float] = {1: 30, 2: 30, 3: 22, 4: 12, 5: 6}
MAX_CONTACTS = 4

OMIT_CASE_ID = 0.18  # share of journeys that leave case_id out, where that is safe
UNCASED_SELF_SERVICE = 0.8  # share of failed self-service attempts without case_id, where safe
OUT_OF_ORDER = 0.037  # share of a contact's later events delivered before the one preceding them
SURVEYED = 0.40
SURVEY_WITHOUT_CONTACT = 0.04
SURVEY_WITH_CASE = 0.33
COMMENTED = 0.10
REPEAT_WINDOW_S = 7 * 86400  # contract §3 default; journeys without case_id keep clear of it

_RULES = Rules()
_WEIGHTS = {d: _RULES.weight(d) for d in DRIVERS}


@dataclass(slots=True)
class _Contact:
    channel: str
    team: str
    agent: str
    queue_wait: int | None = None
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # held, transferred, ... in order
    resolved: bool = True
    scripted: bool = False
    reopened: bool = False  # a case.reopened follows this (resolved) contact

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.steps if k == kind)


@dataclass(slots=True)
class _Plan:
    """What happens in one journey, before it is given times."""

    kind: str
    profile: str
    reason: str
    contacts: list[_Contact]
    attempts: list[str] = field(default_factory=list)  # failed self-service channels, before the first contact


@dataclass(frozen=True, slots=True)
class Centre:
    """Teams and their agents, each with a skill in [0.2, 1]."""

    agents: dict[str, tuple[tuple[str, float], ...]]

    @classmethod
    def build(cls, seed: int) -> Centre:
        rng = random.Random(f"{seed}:centre")
        return cls(
            {
                team: tuple((f"agent-{team}-{i}", round(rng.uniform(0.2, 1.0), 2)) for i in range(1, n + 1))
                for team, n in TEAMS.items()
            }
        )

    def agent(self, rng: random.Random, team: str, hard: bool, other_than: str | None = None) -> str:
        """An agent of `team`; a hard journey goes more often to a weaker agent."""
        agents = [(a, s) for a, s in self.agents[team] if a != other_than]
        weights = [(1.25 - s) if hard else (0.25 + s) for _, s in agents]
        return rng.choices([a for a, _ in agents], weights)[0]


@dataclass(frozen=True, slots=True)
class JourneyInfo:
    """What the simulation meant a journey to be: for summaries and tests."""

    customer_id: str
    case_id: str  # as the worker will name it (the first contact's id when case_id was left out)
    kind: str
    profile: str
    effort: float  # planned points under the contract's default weights, capped
    case_id_given: bool  # its contact.started events carry case_id
    contacts: int
    surveyed: bool
    nps: int | None
    churned_after: bool  # the customer churned after this journey


@dataclass(frozen=True, slots=True)
class Simulation:
    """A generated stream: events in delivery order and what the journeys were meant to be."""

    seed: int
    customers: int
    events: list[dict[str, Any]]
    journeys: list[JourneyInfo]

    def lines(self, limit: int | None = None) -> Iterator[str]:
        """The first `limit` events (all by default) as JSON lines without the newline."""
        for e in self.events[:limit]:
            yield to_json(e)

    def kinds(self, journeys: list[JourneyInfo] | None = None) -> dict[str, int]:
        counts = Counter(j.kind for j in (self.journeys if journeys is None else journeys))
        return {k: counts[k] for k in KINDS}

    def summary(self, limit: int | None = None) -> str:
        """One line: events, customers, journeys by kind, surveys, churn, event time — of the
        first `limit` events (a journey counts once its first contact is among them)."""
        events = self.events[:limit]
        customers = {e["customer_id"] for e in events}
        begun = {e.get("case_id", e["contact_id"]) for e in events if e["type"] == "contact.started"}
        shown = self.journeys if limit is None else [j for j in self.journeys if j.case_id in begun]
        kinds = ", ".join(f"{k} {n}" for k, n in self.kinds(shown).items())
        churned = sum(1 for e in events if e["type"] == "customer.churned")
        surveys = sum(1 for e in events if e["type"] == "survey.responded")
        span = f", {events[0]['occurred_at']} → {events[-1]['occurred_at']}" if events else ""
        return (
            f"{len(events)} events, {len(customers)} customers, {len(shown)} journeys ({kinds}), "
            f"{surveys} surveys, {churned} churned{span}"
        )


def to_json(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def customer_id(n: int) -> str:
    return f"cust-{n:06d}"


def generate(
    customers: int = 1000,
    seed: int = 42,
    *,
    seconds_per_event: float = 18.0,
    start_us: int | None = None,
    end_us: int | None = None,
) -> Simulation:
    """The events of `customers` customers' journeys, in delivery order.

    Give `start_us` (the span begins then) or `end_us` (the last event happens then), both
    microseconds since the epoch. `seconds_per_event` sets how densely journeys are packed:
    one event per that many simulated seconds on average over the span.
    """
    if (start_us is None) == (end_us is None):
        raise ValueError("give exactly one of start_us and end_us")
    if customers < 0 or seconds_per_event <= 0:
        raise ValueError("customers must be ≥ 0 and seconds_per_event > 0")
    centre = Centre.build(seed)
    plans = [_customer_journeys(seed, n, centre) for n in range(1, customers + 1)]
    total = sum(sum(len(j.events) for j in js) + (1 if churn else 0) for js, churn in plans)
    span_s = max(1, round(total * seconds_per_event))
    keyed: list[tuple[tuple[int, int, int, int], int, str, dict[str, Any]]] = []
    infos: list[JourneyInfo] = []
    for n, (journeys, churn) in enumerate(plans, start=1):
        _place(seed, n, journeys, churn, span_s, keyed, infos)
    keyed.sort(key=lambda k: k[0])
    last_s = max((k[1] for k in keyed), default=0)
    if start_us is None:
        assert end_us is not None
        start_us = end_us - last_s * US
    events = []
    for i, ((_, n, _, _), t, type_, fields) in enumerate(keyed):
        events.append(
            {
                "event_id": f"sim-{seed}-{i}",
                "type": type_,
                "occurred_at": iso(start_us + t * US),
                "customer_id": customer_id(n),
                **fields,
            }
        )
    return Simulation(seed=seed, customers=customers, events=events, journeys=infos)


# --- planning a journey -------------------------------------------------------------------------


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def points(plan: _Plan, rules: Rules = _RULES) -> dict[str, float]:
    """A plan's effort points per driver, as contract §4 counts them under `rules`."""
    path = [f"self-service ({a})" for a in plan.attempts] + [c.channel for c in plan.contacts]
    counts = {
        "repeat_contact": len(plan.contacts) - 1,
        "channel_switch": sum(1 for a, b in zip(path, path[1:], strict=False) if a != b),
        "transfer": sum(c.count("transferred") for c in plan.contacts),
        "repeated_info": sum(c.count("info_repeated") for c in plan.contacts),
        "unresolved": sum(1 for c in plan.contacts if not c.resolved),
        "policy_friction": sum(c.count("policy_blocked") for c in plan.contacts),
        "hassle": sum(
            1 for c in plan.contacts for k, f in c.steps if k == "held" and f["hold_seconds"] > rules.effort_hold_over_s
        )
        + sum(1 for c in plan.contacts if c.queue_wait is not None and c.queue_wait > rules.effort_queue_wait_over_s),
        "scripted_service": sum(1 for c in plan.contacts if c.scripted),
        "self_service_failure": len(plan.attempts),
    }
    weights = _WEIGHTS if rules is _RULES else {d: rules.weight(d) for d in DRIVERS}
    return {d: counts[d] * weights[d] for d in DRIVERS}


def effort(plan: _Plan) -> float:
    return min(EFFORT_CAP, sum(points(plan).values()))


def _new_contact(rng: random.Random, centre: Centre, channel: str, reason: str, hard: bool) -> _Contact:
    team = REASONS[reason][0]
    if rng.random() < 0.12:  # misrouted
        team = rng.choice([t for t in TEAMS if t != team])
    contact = _Contact(channel=channel, team=team, agent=centre.agent(rng, team, hard))
    if channel in QUEUE_WAIT:
        contact.queue_wait = rng.randint(*QUEUE_WAIT[channel])
    if channel in LIVE and rng.random() < 0.15:  # a short hold, no points
        contact.steps.append(("held", {"hold_seconds": rng.randint(30, 60)}))
    return contact


def _transfer(rng: random.Random, centre: Centre, contact: _Contact, reason: str, hard: bool) -> None:
    right = REASONS[reason][0]
    if contact.team != right:
        to_team = right
    elif rng.random() < 0.4:
        to_team = rng.choice([t for t in TEAMS if t != right])
    else:
        to_team = contact.team  # to a colleague (a supervisor, a specialist)
    to_agent = centre.agent(rng, to_team, hard, other_than=contact.agent)
    contact.steps.append(
        (
            "transferred",
            {
                "from_agent_id": contact.agent,
                "to_agent_id": to_agent,
                "from_team_id": contact.team,
                "to_team_id": to_team,
            },
        )
    )
    contact.agent, contact.team = to_agent, to_team


def _info(rng: random.Random, contact: _Contact) -> None:
    contact.steps.append(("info_repeated", {"info": rng.choice(INFOS)}))


def _policy(rng: random.Random, contact: _Contact, reason: str) -> None:
    contact.steps.append(("policy_blocked", {"policy": rng.choice(POLICIES[reason])}))


def _long_hold(rng: random.Random, contact: _Contact) -> None:
    contact.steps.append(("held", {"hold_seconds": rng.randint(75, 600)}))


def _long_queue(rng: random.Random, contact: _Contact) -> None:
    contact.queue_wait = rng.randint(150, 1500 if contact.channel == "phone" else 600)


def _easy(rng: random.Random, centre: Centre, reason: str) -> _Plan:
    contact = _new_contact(rng, centre, _pick(rng, CONTACT_CHANNELS), reason, hard=False)
    if contact.channel in QUEUE_WAIT and rng.random() < 0.06:
        _long_queue(rng, contact)
    if rng.random() < 0.04:
        contact.scripted = True
    return _Plan("easy", "low", reason, [contact])


def _repeat(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    channel = _pick(rng, {"phone": 5, "chat": 3, "email": 2, "messaging": 1})
    n = rng.choice((3, 3, 4)) if hard else 2
    contacts = [_new_contact(rng, centre, channel, reason, hard) for _ in range(n)]
    for c in contacts[:-1]:
        c.resolved = False
    if n >= 3 and rng.random() < 0.3:  # "resolved", then it was not: the case is reopened
        contacts[1].resolved = True
        contacts[1].reopened = True
    contacts[-1].resolved = rng.random() < (0.5 if hard else 0.8)
    return _Plan("repeat", "", reason, contacts)


def _channel_switch(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    ladder = rng.choice(LADDERS)
    n = rng.choice((3, 3, 4)) if hard else 2
    contacts = [_new_contact(rng, centre, ch, reason, hard) for ch in ladder[:n]]
    for c in contacts[:-1]:
        c.resolved = False
    contacts[-1].resolved = rng.random() < (0.6 if hard else 0.85)
    return _Plan("channel_switch", "", reason, contacts)


def _transfers(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    contact = _new_contact(rng, centre, _pick(rng, {"phone": 6, "chat": 3, "video": 1}), reason, hard)
    if rng.random() < 0.5 and contact.team == REASONS[reason][0]:  # misrouted by the IVR or bot
        contact.team = rng.choice([t for t in TEAMS if t != contact.team])
        contact.agent = centre.agent(rng, contact.team, hard)
    for _ in range(rng.choice((2, 3)) if hard else rng.choice((1, 2))):
        _transfer(rng, centre, contact, reason, hard)
        if rng.random() < 0.7:
            _info(rng, contact)
    contact.resolved = rng.random() < (0.4 if hard else 0.8)
    return _Plan("transfer", "", reason, [contact])


def _policies(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    channel = _pick(rng, {"phone": 4, "chat": 3, "email": 3, "store": 1})
    contacts = [_new_contact(rng, centre, channel, reason, hard) for _ in range(2 if hard else 1)]
    for c in contacts:
        _policy(rng, c, reason)
        c.resolved = False
    if not hard and rng.random() < 0.5:
        _policy(rng, contacts[0], reason)
    if hard and rng.random() < 0.5:
        contacts[-1].resolved = True  # an exception was made in the end
    return _Plan("policy", "", reason, contacts)


def _self_service(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    first = _pick(rng, SELF_SERVICE_CHANNELS)
    attempts = [first] * rng.choice((2, 2, 3) if hard else (1, 2))
    if hard and rng.random() < 0.4:
        attempts.append(_pick(rng, SELF_SERVICE_CHANNELS))
    channel = _pick(rng, SELF_SERVICE_NEXT[attempts[-1]])
    contacts = [_new_contact(rng, centre, channel, reason, hard)]
    if hard and rng.random() < 0.5:
        contacts[0].resolved = False
        contacts.append(_new_contact(rng, centre, channel, reason, hard))
    return _Plan("self_service", "", reason, contacts, attempts)


def _hassle(rng: random.Random, centre: Centre, reason: str, hard: bool) -> _Plan:
    channel = _pick(rng, {"phone": 6, "chat": 2, "video": 1})
    contacts = [_new_contact(rng, centre, channel, reason, hard) for _ in range(2 if hard else 1)]
    for c in contacts:
        _long_queue(rng, c)
        for _ in range(rng.choice((1, 2, 3))):
            _long_hold(rng, c)
        c.scripted = rng.random() < 0.6
    contacts[0].resolved = not hard and rng.random() < 0.4
    return _Plan("hassle", "", reason, contacts)


_BUILDERS = {
    "repeat": _repeat,
    "channel_switch": _channel_switch,
    "transfer": _transfers,
    "policy": _policies,
    "self_service": _self_service,
    "hassle": _hassle,
}
# which top-up a kind leans on
_TOP_UP_FAVOURITE = {
    "repeat": "contact",
    "channel_switch": "contact",
    "transfer": "transfer",
    "policy": "policy",
    "self_service": "unresolved",
    "hassle": "hold",
}


def _top_up(rng: random.Random, centre: Centre, plan: _Plan) -> bool:
    """Add one more thing that went wrong; False when nothing can be added."""
    hard = plan.profile == "high"
    options = {"contact": 1.0, "transfer": 1.0, "info": 1.0, "policy": 0.7, "hold": 0.7, "unresolved": 1.0}
    options[_TOP_UP_FAVOURITE[plan.kind]] = 4.0
    if len(plan.contacts) >= MAX_CONTACTS:
        del options["contact"]
    if not any(c.resolved and not c.reopened for c in plan.contacts):
        del options["unresolved"]
    if not any(c.channel in LIVE for c in plan.contacts):
        del options["hold"]
    if not options:
        return False
    what = _pick(rng, options)
    if what == "contact":
        last = plan.contacts[-1]
        if plan.kind == "channel_switch" or rng.random() < 0.3:
            channel = rng.choice([c for c in ("phone", "email", "chat", "store") if c != last.channel])
        else:
            channel = last.channel
        if last.resolved and rng.random() < 0.5:
            last.reopened = True  # it came back after all
        else:
            last.resolved = False
        plan.contacts.append(_new_contact(rng, centre, channel, plan.reason, hard))
    elif what == "transfer":
        contact = rng.choice(plan.contacts)
        _transfer(rng, centre, contact, plan.reason, hard)
        if rng.random() < 0.6:
            _info(rng, contact)
    elif what == "info":
        _info(rng, rng.choice(plan.contacts))
    elif what == "policy":
        _policy(rng, rng.choice(plan.contacts), plan.reason)
    elif what == "hold":
        _long_hold(rng, rng.choice([c for c in plan.contacts if c.channel in LIVE]))
    else:
        rng.choice([c for c in plan.contacts if c.resolved and not c.reopened]).resolved = False
    return True


def _plan(rng: random.Random, centre: Centre) -> _Plan:
    """One journey: its profile first, then its kind and drivers to fit the profile's points."""
    profile = _pick(rng, PROFILES)
    reason = _pick(rng, {r: w for r, (_, w) in REASONS.items()})
    if profile == "low":
        return _easy(rng, centre, reason)
    kind = _pick(rng, WRONG_KINDS)
    lo, hi = BANDS[profile]
    for _ in range(40):
        plan = _BUILDERS[kind](rng, centre, reason, profile == "high")
        plan.profile = profile
        while effort(plan) < lo and _top_up(rng, centre, plan):
            pass
        if lo <= effort(plan) <= hi:
            return plan
    # practically unreachable: a journey of this kind that surely fits the band
    plan = _channel_switch(rng, centre, reason, profile == "high")
    plan.profile, plan.kind = profile, "channel_switch"
    plan.contacts[-1].resolved = True
    return plan


# --- timing a journey -----------------------------------------------------------------------------

START, STEP, END, ATTEMPT, CASE, SURVEY = "start", "step", "end", "attempt", "case", "survey"


@dataclass(slots=True)
class _Rel:
    """An event of a journey, `at` seconds after the journey's first event."""

    at: int
    type: str
    fields: dict[str, Any]
    role: str
    contact: int | None = None  # index of the contact it belongs to


@dataclass(slots=True)
class _Journey:
    number: int
    plan: _Plan
    effort: float
    events: list[_Rel]
    survey: bool
    survey_contact: bool  # names the contact (else its own channel, team and reason)
    survey_case: bool
    nps: int | None
    churned_after: bool = False

    @property
    def contact_starts(self) -> list[int]:
        return [e.at for e in self.events if e.role == START]


def _customer_journeys(seed: int, n: int, centre: Centre) -> tuple[list[_Journey], bool]:
    """A customer's journeys in order, with times relative to each journey's start, and
    whether the customer churns after the last of them."""
    rng = random.Random(f"{seed}:customer:{n}")
    cid = customer_id(n)[5:]
    journeys: list[_Journey] = []
    for number in range(1, _weighted_int(rng, JOURNEYS_PER_CUSTOMER) + 1):
        journey = _timed(rng, _plan(rng, centre), number, cid)
        journeys.append(journey)
        if rng.random() < _churn_probability(journey):
            journey.churned_after = True
            return journeys, True
    return journeys, False


def _weighted_int(rng: random.Random, weights: dict[int, float]) -> int:
    return rng.choices(list(weights), list(weights.values()))[0]


def _timed(rng: random.Random, plan: _Plan, number: int, cid: str) -> _Journey:
    events: list[_Rel] = []
    t = 0
    for i, channel in enumerate(plan.attempts):
        if i:
            t += rng.randint(3 * 60, 45 * 60)
        events.append(_Rel(t, "self_service.failed", {"channel": channel, "reason": plan.reason}, ATTEMPT))
    if plan.attempts:
        t += rng.randint(60, 8 * 60) if plan.attempts[-1] == "ivr" else rng.randint(10 * 60, 6 * 3600)
    for i, contact in enumerate(plan.contacts):
        if i:
            prev = plan.contacts[i - 1]
            if prev.reopened:
                t += rng.randint(6 * 3600, 2 * 86400)
                events.append(_Rel(t, "case.reopened", {}, CASE))
                t += rng.randint(10 * 60, 12 * 3600)
            elif plan.kind == "channel_switch":
                t += rng.randint(30 * 60, 86400)
            else:
                t += rng.randint(3600, 2 * 86400)
        t = _timed_contact(rng, plan, contact, f"ct-{cid}-{number}-{i + 1}", i, t, events)
    last = plan.contacts[-1]
    if not last.resolved and rng.random() < 0.45:
        t += rng.randint(2 * 3600, 3 * 86400)
        events.append(_Rel(t, "case.resolved", {"proactive": rng.random() < 0.5}, CASE))
    planned = effort(plan)
    journey = _Journey(number, plan, planned, events, False, True, False, None)
    if rng.random() < SURVEYED:
        t += rng.randint(30 * 60, 2 * 86400)
        scores = _survey_scores(rng, journey)
        journey.survey = True
        journey.nps = scores.get("nps")
        journey.survey_contact = rng.random() >= SURVEY_WITHOUT_CONTACT
        journey.survey_case = journey.survey_contact and rng.random() < SURVEY_WITH_CASE
        if rng.random() < COMMENTED:
            scores["comment"] = _comment(rng, journey, scores)
        events.append(_Rel(t, "survey.responded", scores, SURVEY))
    return journey


def _timed_contact(
    rng: random.Random, plan: _Plan, contact: _Contact, contact_id: str, index: int, t: int, events: list[_Rel]
) -> int:
    """Append one contact's events from `t` on; returns when it ended."""
    first_agent, first_team = contact.agent, contact.team
    for kind, f in reversed(contact.steps):  # who took the contact: before the transfers
        if kind == "transferred":
            first_agent, first_team = f["from_agent_id"], f["from_team_id"]
    started: dict[str, Any] = {"contact_id": contact_id, "channel": contact.channel, "reason": plan.reason}
    started |= {"agent_id": first_agent, "team_id": first_team}
    if contact.queue_wait is not None:
        started["queue_wait_seconds"] = contact.queue_wait
    events.append(_Rel(t, "contact.started", started, START, index))
    lo, hi = DURATION[contact.channel]
    duration = rng.randint(lo, hi) + (90 * len(contact.steps) if contact.channel in LIVE else 0)
    offsets = sorted(rng.sample(range(20, duration - 20), len(contact.steps)))
    for (kind, f), offset in zip(contact.steps, offsets, strict=True):
        events.append(_Rel(t + offset, f"contact.{kind}", {"contact_id": contact_id, **f}, STEP, index))
    reason = plan.reason
    disposition = rng.choice(RESOLVED_DISPOSITIONS[reason] if contact.resolved else UNRESOLVED_DISPOSITIONS)
    ended: dict[str, Any] = {"contact_id": contact_id, "resolved": contact.resolved}
    ended |= {"agent_id": contact.agent, "team_id": contact.team}
    ended["handle_seconds"] = duration if contact.channel in LIVE else rng.randint(240, 1800)
    if contact.scripted:
        ended["scripted"] = True
    ended["disposition"] = disposition
    events.append(_Rel(t + duration, "contact.ended", ended, END, index))
    return t + duration


# --- surveys and churn ---------------------------------------------------------------------------


def _interpolate(x: float, table: tuple[tuple[float, float], ...]) -> float:
    for (x0, y0), (x1, y1) in zip(table, table[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (max(x, x0) - x0) / (x1 - x0)
    return table[-1][1]


_DETRACTORS = ((0, 0.06), (30, 0.22), (60, 0.68), (100, 0.86))
_PROMOTERS = ((0, 0.56), (30, 0.30), (60, 0.07), (100, 0.02))
_CHURN = ((0, 0.035), (30, 0.10), (60, 0.42), (100, 0.56))


def _fixed(journey: _Journey) -> bool:
    return journey.plan.contacts[-1].resolved or any(e.type == "case.resolved" for e in journey.events)


def _recovered(journey: _Journey) -> bool:
    """Fixed proactively after a first, minor failure: the service recovery paradox."""
    return journey.effort < 60 and any(e.type == "case.resolved" and e.fields["proactive"] for e in journey.events)


def _survey_scores(rng: random.Random, journey: _Journey) -> dict[str, Any]:
    e = journey.effort
    p_det, p_pro = _interpolate(e, _DETRACTORS), _interpolate(e, _PROMOTERS)
    if not _fixed(journey):
        p_det, p_pro = min(0.95, p_det + 0.12), p_pro / 2
    if _recovered(journey):
        p_det, p_pro = p_det / 2, min(0.8, p_pro + 0.15)
    u = rng.random()
    if u < p_det:
        low = e >= 60
        nps = rng.choices(range(7), (3, 3, 4, 4, 4, 3, 3) if low else (1, 1, 1, 2, 3, 5, 6))[0]
        csat = rng.choices((1, 2, 3, 4), (3, 4, 3, 1))[0]
        shift = -0.6
    elif u < p_det + p_pro:
        nps = rng.choices((9, 10), (55, 45))[0]
        csat = rng.choices((4, 5), (35, 65))[0]
        shift = 0.4
    else:
        nps = rng.choice((7, 8))
        csat = rng.choices((3, 4, 5), (30, 55, 15))[0]
        shift = 0.0
    ces = max(1, min(7, round(rng.gauss(6.6 - 0.05 * e + shift, 0.8))))
    shape = rng.random()
    if shape < 0.35:
        return {"nps": nps}
    if shape < 0.85:
        return {"nps": nps, "ces": ces, "csat": csat}
    if shape < 0.95:
        return {"nps": nps, "csat": csat}
    return {"ces": ces, "csat": csat}


_COMMENTS: dict[str, tuple[str, ...]] = {
    "repeat_contact": (
        "Third time I had to get in touch about the same thing.",
        "Why do I have to call again and again?",
    ),
    "channel_switch": (
        "Chat sent me to email, email told me to call.",
        "Nobody picks up one channel and sees it through.",
    ),
    "transfer": ("Passed from one department to the next.", "Transferred three times, explained it three times."),
    "repeated_info": ("I gave my order number at least three times.", "Do you not keep notes?"),
    "unresolved": ("Still not sorted.", "Promised a call back that never came."),
    "policy_friction": ("Your policy makes no sense.", "Hiding behind the rules instead of helping."),
    "hassle": ("Forty minutes on hold.", "The waiting is unbearable."),
    "scripted_service": ("Felt like talking to a script.", "Canned answers, no real help."),
    "self_service_failure": (
        "The app kept failing, so I had to call.",
        "Your website could not do the simplest thing.",
    ),
    "none": ("Quick and friendly, thanks!", "Sorted in one go.", "Easy, just how it should be.", "Fine."),
}


def _comment(rng: random.Random, journey: _Journey, scores: dict[str, Any]) -> str:
    drivers = {d: p for d, p in points(journey.plan).items() if p}
    happy = scores.get("nps", 7) >= 7 or not drivers
    if happy:
        return rng.choice(_COMMENTS["none"])
    worst = max(drivers, key=lambda d: (drivers[d], -DRIVERS.index(d)))
    return rng.choice(_COMMENTS[worst])


def _churn_probability(journey: _Journey) -> float:
    p = _interpolate(journey.effort, _CHURN)
    if journey.nps is not None and journey.nps <= 6:
        p += 0.12
    elif journey.nps is not None and journey.nps >= 9:
        p *= 0.6
    if not _fixed(journey):
        p += 0.05
    return min(0.9, p)


_CHURN_REASONS: dict[str, float] = {
    "switched to a competitor": 30,
    "too much hassle": 25,
    "price": 20,
    "moved away": 8,
    "no longer needs the service": 7,
    "": 30,  # no reason given
}


# --- placing journeys in time -----------------------------------------------------------------


def _place(
    seed: int,
    n: int,
    journeys: list[_Journey],
    churn: bool,
    span_s: int,
    out: list[tuple[tuple[int, int, int, int], int, str, dict[str, Any]]],
    infos: list[JourneyInfo],
) -> None:
    """Give a customer's journeys their start times and case ids; append their events, keyed
    for delivery, to `out`."""
    rng = random.Random(f"{seed}:place:{n}")
    starts = sorted(rng.randrange(span_s) for _ in journeys)
    cid = customer_id(n)
    contacts = [(j, start + at) for j, start in zip(journeys, starts, strict=True) for at in j.contact_starts]
    seq = 0
    last_event = 0
    for journey, start in zip(journeys, starts, strict=True):
        first_contact = f"ct-{cid[5:]}-{journey.number}-1"
        own = [start + at for at in journey.contact_starts]
        # without case_id a contact joins the customer's latest case of the same reason within
        # the repeat window: leave it out only when no other journey of that reason is near
        clash = any(
            o is not journey
            and o.plan.reason == journey.plan.reason
            and own[0] - REPEAT_WINDOW_S - 3600 <= t <= own[-1]
            for o, t in contacts
        )
        omit = not clash and rng.random() < OMIT_CASE_ID
        case_id = first_contact if omit else f"case-{cid[5:]}-{journey.number}"
        previous_contact_of: dict[int | None, tuple[int, int, int, int]] = {}  # contact → its latest event's key
        for rel in journey.events:
            t = start + rel.at
            fields = rel.fields
            if rel.role == START:
                fields = _insert_after(fields, "channel", None if omit else case_id)
            elif rel.role == ATTEMPT:
                # an attempt without case_id attaches to the next contact within 24 h: leave
                # it out only when that contact is this journey's first
                crowded = any(o is not journey and t <= ot <= own[0] for o, ot in contacts)
                cased = crowded or rng.random() >= UNCASED_SELF_SERVICE
                fields = {**fields, "case_id": case_id} if cased else fields
            elif rel.role == CASE:
                fields = {"case_id": case_id, **fields}
            elif rel.role == SURVEY:
                fields = _survey_fields(journey, case_id, fields)
            key = (t, n, seq, 1)
            if rel.role in (STEP, END) and rng.random() < OUT_OF_ORDER:
                prev = previous_contact_of[rel.contact]
                key = (prev[0], n, prev[2], 0)  # just before the contact's preceding event
            if rel.contact is not None:
                previous_contact_of[rel.contact] = (t, n, seq, 1)
            out.append((key, t, rel.type, fields))
            seq += 1
            last_event = max(last_event, t)
        infos.append(
            JourneyInfo(
                customer_id=cid,
                case_id=case_id,
                kind=journey.plan.kind,
                profile=journey.plan.profile,
                effort=journey.effort,
                case_id_given=not omit,
                contacts=len(journey.plan.contacts),
                surveyed=journey.survey,
                nps=journey.nps,
                churned_after=journey.churned_after,
            )
        )
    if churn:
        t = last_event + rng.randint(86400, 14 * 86400)
        reason = _pick(rng, _CHURN_REASONS)
        out.append(((t, n, seq, 1), t, "customer.churned", {"reason": reason} if reason else {}))


def _insert_after(fields: dict[str, Any], after: str, case_id: str | None) -> dict[str, Any]:
    if case_id is None:
        return fields
    out: dict[str, Any] = {}
    for k, v in fields.items():
        out[k] = v
        if k == after:
            out["case_id"] = case_id
    return out


def _survey_fields(journey: _Journey, case_id: str, scores: dict[str, Any]) -> dict[str, Any]:
    last = next(e for e in reversed(journey.events) if e.role == END)
    if not journey.survey_contact:
        own = {"channel": journey.plan.contacts[-1].channel, "team_id": last.fields["team_id"]}
        return {**scores, **own, "reason": journey.plan.reason}
    refs: dict[str, Any] = {"contact_id": last.fields["contact_id"]}
    if journey.survey_case:
        refs["case_id"] = case_id
    return {**refs, **scores}
