"""What the service organisation should learn (contract §7 /insights): first-contact resolution,
repeat contacts and what causes effort, per segment — as bucketed aggregates kept as cases change.

A case counts in the hour (and day) of its first contact, once in each segment it belongs to:
`all`, the channel of each of its contacts, every team and agent that handled one of its
contacts, and the case's reason. A case that spans two teams therefore counts fully in both
teams (each team sees every case it touched); segment figures do not add up to `all`.

When a case changes, its old contribution is taken out and its new one put in, so the
aggregates always describe the cases as they stand now. Pure: cases in, increments out.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.cases import RESOLVED, Case, Contact, case_reason, case_status
from streams.effort import Effort, score
from streams.rules import DRIVERS, Rules
from streams.surveys import Bucket
from streams.times import DAY, HOUR

BASE_STATS = ("cases", "contacts", "resolved", "fcr", "repeat", "effort")
REASON_PREFIX = "r:"  # r:<reason>:cases, r:<reason>:effort


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one case adds to the aggregates: where (hour of its first contact, segments), how much."""

    first_at: int
    segments: frozenset[str]
    stats: tuple[tuple[str, float], ...]  # stat → amount, zero amounts left out


def contribution(
    case: Case, contacts: dict[str, Contact], rules: Rules, effort: Effort | None = None
) -> Contribution | None:
    """A case's contribution; None for a case without a contact (it has no first contact).
    `effort` is the case's score when the caller has it already."""
    if not case.contacts:
        return None
    started = [contacts[cid] for _, cid in case.contacts]
    effort = effort or score(case, contacts, rules)
    status = case_status(case, contacts)
    reason = case_reason(case, contacts)
    n = len(started)
    resolved = status == RESOLVED
    stats: dict[str, float] = {
        "cases": 1,
        "contacts": n,
        "resolved": 1 if resolved else 0,
        "fcr": 1 if resolved and n == 1 else 0,
        "repeat": 1 if n > 1 else 0,
        "effort": effort.total,
    }
    for driver in DRIVERS:
        stats["d:" + driver] = effort.drivers[driver]
    if reason:
        name = reason.replace("\x1f", " ")  # \x1f separates fields in the write script
        stats[f"{REASON_PREFIX}{name}:cases"] = 1
        stats[f"{REASON_PREFIX}{name}:effort"] = effort.total
    segments = {"all"}
    for c in started:
        if c.channel:
            segments.add(f"channel:{c.channel}")
        segments.update(f"team:{t}" for _, t in c.teams)
        segments.update(f"agent:{a}" for _, a in c.agents)
    if reason:
        segments.add(f"reason:{reason}")
    return Contribution(
        first_at=case.contacts[0][0],
        segments=frozenset(segments),
        stats=tuple(sorted((k, v) for k, v in stats.items() if v)),
    )


def buckets_of(t_us: int) -> list[Bucket]:
    """Insights are kept to the hour: a case counts in its first contact's hour and day."""
    return [("h", t_us // HOUR), ("d", t_us // DAY)]


# increments of one segment in one bucket: (segment, bucket, stat → amount)
Cell = tuple[str, Bucket, dict[str, float]]


def delta(before: Contribution | None, after: Contribution | None) -> list[Cell]:
    """The increments that turn `before` into `after` (nothing when they are equal)."""
    if before == after:
        return []
    out: list[Cell] = []
    if before is not None and after is not None and before.first_at // HOUR == after.first_at // HOUR:
        old, new = dict(before.stats), dict(after.stats)
        changed = {k: v - old.get(k, 0.0) for k, v in new.items() if v != old.get(k, 0.0)}
        changed.update({k: -v for k, v in old.items() if k not in new})
        for bucket in buckets_of(after.first_at):
            if changed:
                out += [(seg, bucket, changed) for seg in after.segments & before.segments]
            out += [(seg, bucket, new) for seg in after.segments - before.segments]
            out += [(seg, bucket, {k: -v for k, v in old.items()}) for seg in before.segments - after.segments]
        return out
    if before is not None:
        gone = {k: -v for k, v in before.stats}
        out += [(seg, bucket, gone) for bucket in buckets_of(before.first_at) for seg in before.segments]
    if after is not None:
        added = dict(after.stats)
        out += [(seg, bucket, added) for bucket in buckets_of(after.first_at) for seg in after.segments]
    return out


def driver_growth(before: Contribution | None, after: Contribution | None) -> dict[str, float]:
    """Effort points each driver gained (for the Prometheus counters)."""
    old = dict(before.stats) if before else {}
    new = dict(after.stats) if after else {}
    out = {}
    for driver in DRIVERS:
        gained = new.get("d:" + driver, 0.0) - old.get("d:" + driver, 0.0)
        if gained > 0:
            out[driver] = gained
    return out


def hour_window(at_us: int, length_us: int) -> tuple[int, int]:
    """Cases whose first contact lies in (at − length, at], to the hour, as (after, upto) minutes
    for streams.surveys.cover (which then uses hour and day buckets only)."""
    return ((at_us - length_us) // HOUR) * 60 + 59, (at_us // HOUR) * 60 + 59


def answer(stats: dict[str, float], reasons: list[str], top: int = 5) -> dict[str, object]:
    """The /insights figures from summed stats."""
    cases = int(stats.get("cases", 0))
    resolved = stats.get("resolved", 0)
    top_reasons = []
    for reason in reasons:
        n = stats.get(f"{REASON_PREFIX}{reason}:cases", 0)
        if n:
            top_reasons.append(
                {"reason": reason, "cases": int(n), "mean_effort": stats.get(f"{REASON_PREFIX}{reason}:effort", 0) / n}
            )
    top_reasons.sort(key=lambda r: (-float(r["mean_effort"]) * float(r["cases"]), r["reason"]))  # type: ignore[arg-type]
    return {
        "cases": cases,
        "contacts": int(stats.get("contacts", 0)),
        "fcr_rate": stats.get("fcr", 0) / resolved if resolved else None,
        "repeat_contact_rate": stats.get("repeat", 0) / cases if cases else None,
        "mean_effort": stats.get("effort", 0) / cases if cases else None,
        "drivers": {d: stats.get("d:" + d, 0.0) for d in DRIVERS},
        "top_reasons": top_reasons[:top],
    }
