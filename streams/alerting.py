"""Alerts (contract §5): what fires, with which id, severity, segments and reasons.

Pure: the rules decide from state and event, the shell stamps `emitted_at` and produces.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from streams.rules import Rules
from streams.surveys import Drop
from streams.times import DAY, iso

WARNING = "warning"
CRITICAL = "critical"
SEVERITY_RANK = {WARNING: 1, CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert; `to_dict(emitted_at)` is the contract's JSON value."""

    alert_id: str
    type: str
    severity: str
    score: float
    threshold: float
    occurred_at: int  # µs, event time of the triggering event
    customer_id: str | None = None
    case_id: str | None = None
    contact_id: str | None = None
    segment: str | None = None
    segments: tuple[str, ...] = ()
    reasons: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    trigger_event_id: str | None = None
    due_at: int | None = None

    @property
    def key(self) -> str:
        """The Kafka record key: the customer, or `segment:<segment>` for a segment alert."""
        return self.customer_id if self.customer_id is not None else f"segment:{self.segment}"

    def to_dict(self, emitted_at: int) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "type": self.type,
            "severity": self.severity,
            "customer_id": self.customer_id,
            "case_id": self.case_id,
            "contact_id": self.contact_id,
            "segment": self.segment,
            "segments": list(self.segments),
            "score": self.score,
            "threshold": self.threshold,
            "reasons": [dict(r) for r in self.reasons],
            "trigger_event_id": self.trigger_event_id,
            "occurred_at": iso(self.occurred_at),
            "emitted_at": iso(emitted_at),
            "due_at": iso(self.due_at) if self.due_at is not None else None,
        }


def alert_id(*parts: str) -> str:
    """A deterministic id from what makes the alert unique (never from clocks or offsets)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def segments_of(channel: str | None, team: str | None, agent: str | None, reason: str | None) -> tuple[str, ...]:
    """The segments (§6) a contact belongs to, in a fixed order."""
    pairs = (("channel", channel), ("team", team), ("agent", agent), ("reason", reason))
    return tuple(f"{name}:{value}" for name, value in pairs if value)


def crossed(score: float, warning: float, critical: float, already: str) -> str | None:
    """The severity a score newly reaches, given the severities already alerted ("w", "c").

    Reaching critical emits only the critical one, even when warning never fired.
    """
    if score >= critical and "c" not in already:
        return CRITICAL
    if score >= warning and "w" not in already and "c" not in already:
        return WARNING
    return None


def drop_alert(drop: Drop, trigger_event_id: str, rules: Rules) -> Alert:
    """nps.drop (§5): a segment's NPS over the recent window fell significantly below the one before.

    score is the recent NPS and threshold the baseline it fell below; critical when z is at or
    below rules.nps_drop_z_critical (−3.29, p < 0.001 one-sided) as well."""
    recent, baseline = drop.recent, drop.baseline
    assert recent.nps is not None and baseline.nps is not None
    critical = drop.z <= rules.nps_drop_z_critical
    z_text = "−∞" if math.isinf(drop.z) else f"{drop.z:.2f}"
    days_recent = rules.nps_drop_recent_us / DAY
    days_base = rules.nps_drop_baseline_us / DAY
    reasons = (
        {
            "driver": "nps_drop",
            "detail": f"NPS {recent.nps:.1f} over the last {days_recent:g} days (n={recent.n}) against "
            f"{baseline.nps:.1f} over the {days_base:g} days before (n={baseline.n}); z = {z_text}",
            "contribution": recent.nps - baseline.nps,
        },
        {
            "driver": "detractors",
            "detail": f"{recent.detractors} of {recent.n} answers were detractors, against "
            f"{baseline.detractors} of {baseline.n} before",
            "contribution": 100 * (recent.detractors / recent.n - baseline.detractors / baseline.n),
        },
    )
    return Alert(
        alert_id=alert_id("nps.drop", drop.segment, str(drop.at)),
        type="nps.drop",
        severity=CRITICAL if critical else WARNING,
        score=recent.nps,
        threshold=baseline.nps,
        occurred_at=drop.at,
        segment=drop.segment,
        segments=(drop.segment,),
        reasons=reasons,
        trigger_event_id=trigger_event_id,
    )
