"""Effort per case (contract §4): points per driver, derived from the case's contacts.

Every figure is recomputed from the facts kept in the case (counts, times, channels), so the
score depends only on which events were applied, not on the order they arrived in, and it
cannot fall: the facts only grow, and adding a contact or an attempt to a channel path never
lowers the number of changes along it.
"""

from __future__ import annotations

from streams.cases import Case, Contact
from streams.rules import DAY, DRIVERS, EFFORT_CAP, HOUR, Rules


class Effort:
    """A case's effort: points per driver (uncapped) and the capped total; the line a team lead
    reads per driver (`details`) is written only when asked for (reasons, the API)."""

    __slots__ = ("drivers", "total", "_case", "_contacts", "_rules", "_details")

    def __init__(self, drivers: dict[str, float], case: Case, contacts: dict[str, Contact], rules: Rules) -> None:
        self.drivers = drivers
        self.total = min(EFFORT_CAP, sum(drivers.values()))
        self._case, self._contacts, self._rules = case, contacts, rules
        self._details: dict[str, str] | None = None

    @property
    def details(self) -> dict[str, str]:
        if self._details is None:
            self._details = _details(self._case, self._contacts, self._rules)
        return self._details

    def reasons(self) -> list[dict[str, object]]:
        """Drivers with points, largest first (ties in the contract's driver order)."""
        ranked = sorted(
            (d for d in DRIVERS if self.drivers[d] > 0),
            key=lambda d: (-self.drivers[d], DRIVERS.index(d)),
        )
        details = self.details
        return [{"driver": d, "detail": details[d], "contribution": self.drivers[d]} for d in ranked]


def channel_path(case: Case, contacts: dict[str, Contact]) -> list[str]:
    """The channels the customer went through, in time order; a failed self-service attempt
    shows as `self-service (app)` just before the contact it led to."""
    steps: list[tuple[int, int, str]] = [
        (a.at, 0, f"self-service ({a.channel})" if a.channel else "self-service") for a in case.self_service
    ]
    steps += [(t, 1, contacts[cid].channel or "?") for t, cid in case.contacts]
    steps.sort(key=_step_order)  # stable: contacts of the same instant keep the case's order
    return [s[2] for s in steps]


def _step_order(step: tuple[int, int, str]) -> tuple[int, int]:
    return step[0], step[1]


def score(case: Case, contacts: dict[str, Contact], rules: Rules) -> Effort:
    """The effort of one case under `rules` (on the hot path: counts only, no text)."""
    hold_over, wait_over = rules.effort_hold_over_s, rules.effort_queue_wait_over_s
    n = transfers = infos = unresolved = policies = hassle = scripted = 0
    path: list[tuple[int, int, str]] = []
    for t, cid in case.contacts:
        c = contacts[cid]
        n += 1
        transfers += c.transfers
        infos += len(c.infos)
        policies += len(c.policies)
        unresolved += c.ever_unresolved
        scripted += c.scripted
        if c.holds:
            hassle += sum(1 for h in c.holds if h > hold_over)
        if c.queue_wait_s is not None and c.queue_wait_s > wait_over:
            hassle += 1
        path.append((t, 1, c.channel or "?"))
    attempts = case.self_service
    if attempts:
        path += [(a.at, 0, f"self-service ({a.channel})" if a.channel else "self-service") for a in attempts]
        path.sort(key=_step_order)
    switches = sum(1 for a, b in zip(path, path[1:], strict=False) if a[2] != b[2])
    w = rules.weight
    drivers = {
        "repeat_contact": max(0, n - 1) * w("repeat_contact"),
        "channel_switch": switches * w("channel_switch"),
        "transfer": transfers * w("transfer"),
        "repeated_info": infos * w("repeated_info"),
        "unresolved": unresolved * w("unresolved"),
        "policy_friction": policies * w("policy_friction"),
        "hassle": hassle * w("hassle"),
        "scripted_service": scripted * w("scripted_service"),
        "self_service_failure": len(attempts) * w("self_service_failure"),
    }
    return Effort(drivers, case, contacts, rules)


def _details(case: Case, contacts: dict[str, Contact], rules: Rules) -> dict[str, str]:
    """One line per driver that a team lead understands at a glance."""
    started = [contacts[cid] for _, cid in case.contacts]
    transfers = sum(c.transfers for c in started)
    infos = [i for c in started for i in c.infos]
    unresolved = sum(1 for c in started if c.ever_unresolved)
    policies = [p for c in started for p in c.policies]
    long_holds = [h for c in started for h in c.holds if h > rules.effort_hold_over_s]
    long_waits = [
        c.queue_wait_s
        for c in started
        if c.queue_wait_s is not None and c.queue_wait_s > rules.effort_queue_wait_over_s
    ]
    scripted = sum(1 for c in started if c.scripted)
    attempts = case.self_service
    return {
        "repeat_contact": _repeat_detail(case),
        "channel_switch": " → ".join(channel_path(case, contacts)),
        "transfer": _transfer_detail(started, transfers),
        "repeated_info": _count(len(infos), "time", "repeated information") + _listing(infos),
        "unresolved": _count(unresolved, "contact") + " ended unresolved",
        "policy_friction": _count(len(policies), "time", "blocked by policy") + _listing(policies),
        "hassle": _hassle_detail(long_holds, long_waits),
        "scripted_service": _count(scripted, "scripted contact"),
        "self_service_failure": _count(len(attempts), "failed self-service attempt")
        + _listing([a.channel for a in attempts]),
    }


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _span(us: int) -> str:
    if us >= 2 * DAY:
        return f"{round(us / DAY)} days"
    if us >= 2 * HOUR:
        return f"{round(us / HOUR)} hours"
    minutes = max(1, round(us / 60_000_000))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _repeat_detail(case: Case) -> str:
    n = len(case.contacts)
    if n < 2:
        return "first contact"
    return f"{_ordinal(n)} contact in {_span(case.contacts[-1][0] - case.contacts[0][0])}"


def _transfer_detail(started: list[Contact], transfers: int) -> str:
    text = _count(transfers, "transfer")
    hops = [" → ".join(c.agent_path()) for c in started if c.transfers and len(c.agent_path()) > 1]
    return text + (f" ({'; '.join(hops)})" if hops else "")


def _hassle_detail(holds: list[float], waits: list[float]) -> str:
    parts = []
    if len(holds) == 1:
        parts.append(f"on hold {_minutes(holds[0])}")
    elif holds:
        parts.append(f"on hold {len(holds)} times (longest {_minutes(max(holds))})")
    if waits:
        parts.append(f"waited {_minutes(max(waits))} in queue")
    return "; ".join(parts)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _count(n: int, noun: str, prefix: str = "") -> str:
    text = f"{n} {noun}{'' if n == 1 else 's'}"
    return f"{prefix} {text}" if prefix else text


def _listing(items: list[str | None]) -> str:
    named = list(dict.fromkeys(i for i in items if i))
    return f": {', '.join(named)}" if named else ""
